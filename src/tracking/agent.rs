//! Who made a tracking hit, from its User-Agent: the browser or mail
//! client, the operating system and the kind of device (3.2 `browser`, `os`,
//! `device`), and whether the hit was made by a machine rather than by the
//! recipient.
//!
//! Mail systems that fetch images for their users are recognised before
//! generic parsing, because their agents would otherwise read as an old
//! desktop browser: Apple Mail Privacy Protection (which prefetches every
//! image of every message, opened or not: a machine open), Gmail's image
//! proxy, Yahoo's and Outlook's proxies, and the QQ and 163 web mailers
//! (which fetch when the user opens the message: human opens, named after the
//! mail system). Link scanners of mail security gateways are machines too.
//! Everything else goes to woothee's parser.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use woothee::parser::Parser;

/// What a User-Agent says about the hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub browser: String,
    pub os: String,
    pub device: Device,
    /// A proxy's prefetch or a security scanner: recorded, never unique.
    pub machine: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
    Unknown,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Unknown => "unknown",
        }
    }
}

/// Image proxies of mail systems, matched on a fragment of the agent
/// (lower case): the name recorded as the browser, and whether its fetches
/// are prefetches rather than the recipient opening the message.
const PROXIES: &[(&str, &str, bool)] = &[
    ("googleimageproxy", "Gmail Image Proxy", false),
    ("ggpht.com", "Gmail Image Proxy", false),
    ("yahoomailproxy", "Yahoo Mail Proxy", false),
    ("ymailproxy", "Yahoo Mail Proxy", false),
    ("outlook-ios", "Outlook", false),
    ("outlook-android", "Outlook", false),
    ("ms-office", "Outlook", false),
    ("microsoft outlook", "Outlook", false),
    ("mailexchangeproxy", "Outlook Image Proxy", false),
    ("qqmail", "QQ Mail", false),
    ("mail.qq.com", "QQ Mail", false),
    ("netease", "163 Mail", false),
    ("mail.163.com", "163 Mail", false),
    ("thunderbird", "Thunderbird", false),
];

/// Security gateways and link checkers that fetch every link of a message
/// before (or instead of) the recipient.
const SCANNERS: &[&str] = &[
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "messagelabs",
    "trendmicro",
    "forcepoint",
    "sophos",
    "fortiguard",
    "safelinks",
    "urldefense",
    "linkchecker",
    "python-requests",
    "go-http-client",
    "headlesschrome",
];

static PARSER: LazyLock<Parser> = LazyLock::new(Parser::new);

/// Agents already read: a campaign's opens come from a few thousand
/// distinct User-Agents, and reading one costs more than the rest of a hit.
/// Emptied when full, so it never holds more than [`CACHED`].
static CACHE: LazyLock<Mutex<HashMap<Box<str>, Agent>>> = LazyLock::new(Mutex::default);
const CACHED: usize = 4_096;

impl Agent {
    /// [`Agent::read`], remembered per distinct User-Agent.
    pub fn parse(user_agent: &str) -> Agent {
        if let Some(known) = CACHE.lock().expect("agent cache").get(user_agent) {
            return known.clone();
        }
        let agent = Agent::read(user_agent);
        let mut cache = CACHE.lock().expect("agent cache");
        if cache.len() >= CACHED {
            cache.clear();
        }
        cache.insert(user_agent.into(), agent.clone());
        agent
    }

    fn read(user_agent: &str) -> Agent {
        let ua = user_agent.trim();
        let lower = ua.to_ascii_lowercase();
        // Apple Mail Privacy Protection fetches with a bare "Mozilla/5.0".
        if ua == "Mozilla/5.0" {
            return Agent::named("Apple Mail Privacy Protection", "", Device::Unknown, true);
        }
        let generic = PARSER.parse(ua);
        let (os, device) = match &generic {
            Some(r) => os_and_device(r.os, &r.os_version, r.category, &lower),
            None => (String::new(), Device::Unknown),
        };
        if SCANNERS.iter().any(|s| lower.contains(s)) {
            let name = generic
                .as_ref()
                .filter(|r| r.name != "UNKNOWN")
                .map_or("Link scanner", |r| r.name);
            return Agent::named(name, &os, device, true);
        }
        if let Some((_, name, prefetch)) = PROXIES.iter().find(|(needle, _, _)| lower.contains(needle)) {
            return Agent::named(name, &os, device, *prefetch);
        }
        // Apple Mail itself: WebKit without a browser name, on a Mac or iOS.
        if lower.contains("applewebkit")
            && !lower.contains("safari")
            && (lower.contains("mac os x") || lower.contains("iphone") || lower.contains("ipad"))
        {
            return Agent::named("Apple Mail", &os, device, false);
        }
        match generic {
            Some(r) if r.name != "UNKNOWN" => {
                let browser = if r.version.is_empty() || r.version == "UNKNOWN" {
                    r.name.to_string()
                } else {
                    format!("{} {}", r.name, major(r.version))
                };
                let machine = r.category == "crawler";
                Agent::named(&browser, &os, device, machine)
            }
            _ => Agent::named("", &os, device, false),
        }
    }

    fn named(browser: &str, os: &str, device: Device, machine: bool) -> Agent {
        Agent {
            browser: browser.to_string(),
            os: os.to_string(),
            device,
            machine,
        }
    }
}

/// Woothee's OS names in the usual spelling (`Mac OS X`, `iOS`), and the
/// device: iPads and Android without "Mobile" are tablets.
fn os_and_device(os: &str, os_version: &str, category: &str, lower: &str) -> (String, Device) {
    let tablet = lower.contains("ipad") || (lower.contains("android") && !lower.contains("mobile"));
    let device = match category {
        _ if tablet => Device::Tablet,
        "pc" => Device::Desktop,
        "smartphone" | "mobilephone" => Device::Mobile,
        _ => Device::Unknown,
    };
    let name = match os {
        "UNKNOWN" => String::new(),
        "Mac OSX" => "Mac OS X".to_string(),
        "iPhone" | "iPad" | "iPod" => "iOS".to_string(),
        "Android" if !os_version.is_empty() && os_version != "UNKNOWN" => {
            format!("Android {}", major(os_version))
        }
        other => other.to_string(),
    };
    (name, device)
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_browsers() {
        let a = Agent::parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
        );
        assert_eq!(
            (a.browser.as_str(), a.os.as_str(), a.device),
            ("Chrome 120", "Windows 10", Device::Desktop)
        );
        assert!(!a.machine);
        let a = Agent::parse(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
        );
        assert_eq!((a.browser.as_str(), a.os.as_str()), ("Firefox 121", "Mac OS X"));
    }

    #[test]
    fn phones_and_tablets() {
        let a = Agent::parse(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
             Version/17.1 Mobile/15E148 Safari/604.1",
        );
        assert_eq!((a.os.as_str(), a.device), ("iOS", Device::Mobile));
        let a = Agent::parse(
            "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        );
        assert_eq!(
            (a.browser.as_str(), a.os.as_str(), a.device),
            ("Apple Mail", "iOS", Device::Tablet)
        );
        let a = Agent::parse(
            "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/119.0.0.0 Mobile Safari/537.36",
        );
        assert_eq!((a.os.as_str(), a.device), ("Android 13", Device::Mobile));
    }

    #[test]
    fn mail_proxies_come_before_generic_parsing() {
        let a = Agent::parse(
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        );
        assert_eq!(a.browser, "Gmail Image Proxy");
        assert!(!a.machine, "Gmail fetches when the user opens");
        let a = Agent::parse("Mozilla/5.0");
        assert_eq!(a.browser, "Apple Mail Privacy Protection");
        assert!(a.machine, "Apple prefetches every message");
        assert_eq!(
            Agent::parse("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html").browser,
            "Yahoo Mail Proxy"
        );
    }

    #[test]
    fn scanners_are_machines() {
        assert!(Agent::parse("Mozilla/5.0 (compatible; Barracuda Sentinel)").machine);
        assert!(Agent::parse("python-requests/2.31").machine);
        assert!(
            Agent::parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").machine
        );
        assert!(!Agent::parse("curl/8.5.0").machine);
        assert_eq!(Agent::parse("").device, Device::Unknown);
    }
}
