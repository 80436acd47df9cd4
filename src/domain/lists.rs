//! Contact lists and their addresses: the record formats of API.md F.2 and
//! H-7, and the rules every way of adding an address shares (D-15, D-16).

use std::borrow::Cow;

use encoding_rs::{Encoding, GB18030, UTF_8};

use super::email::EmailAddress;

/// The most records one `ml_addr`, `maillist` or `address` batch may carry (D-17).
pub const MAX_BATCH: usize = 100_000;
/// Longest list name and description, in characters (4.3).
pub const MAX_SUBJECT: usize = 100;
pub const MAX_DESCRIPTION: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStatus {
    Enabled,
    Disabled,
}

impl ListStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(ListStatus::Enabled),
            "disabled" => Some(ListStatus::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListStatus::Enabled => "enabled",
            ListStatus::Disabled => "disabled",
        }
    }
}

/// A contact list as the API shows it (4.1, 4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactList {
    pub id: i64,
    pub subject: String,
    pub description: String,
    pub status: ListStatus,
    pub count: i64,
}

/// The extra fields the vendor's clients send (Part G).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    pub sex: String,
    pub birthday: String,
    pub phone: String,
    pub area: String,
}

/// An address about to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAddress {
    pub email: EmailAddress,
    pub fullname: String,
    pub vars: [String; 10],
    pub extra: Extra,
}

impl NewAddress {
    /// An address with its name defaulting to the local part (4.13's rule,
    /// C-4.9h).
    pub fn new(email: EmailAddress, fullname: &str) -> Self {
        let fullname = match fullname.trim() {
            "" => email.local_part().to_string(),
            n => n.to_string(),
        };
        NewAddress {
            email,
            fullname,
            vars: Default::default(),
            extra: Extra::default(),
        }
    }
}

/// One address to store, as text fields borrowed from wherever it was
/// parsed into: what the store binds, whichever way the rows came.
pub struct AddressRecord<'a> {
    pub address: &'a str,
    pub key: Cow<'a, str>,
    pub fullname: &'a str,
    pub vars: [&'a str; 10],
    /// sex, birthday, phone, area (Part G).
    pub extra: [&'a str; 4],
}

/// Addresses to store, by position.
pub trait AddressRecords: Sync {
    fn count(&self) -> usize;
    fn record(&self, i: usize) -> AddressRecord<'_>;
}

impl AddressRecords for [NewAddress] {
    fn count(&self) -> usize {
        self.len()
    }

    fn record(&self, i: usize) -> AddressRecord<'_> {
        let a = &self[i];
        AddressRecord {
            address: a.email.as_str(),
            key: Cow::Owned(a.email.key()),
            fullname: &a.fullname,
            vars: std::array::from_fn(|v| a.vars[v].as_str()),
            extra: [&a.extra.sex, &a.extra.birthday, &a.extra.phone, &a.extra.area],
        }
    }
}

/// Fields of a packed record: address, key, fullname, var1…var10, then the
/// four extra fields.
const PACKED_FIELDS: usize = 17;

/// Parsed addresses packed into one text buffer: an import batch of 20,000
/// rows costs two allocations instead of some 300,000, and a few MB.
#[derive(Debug, Default)]
pub struct PackedAddresses {
    text: String,
    /// Where each field ends in `text`, `PACKED_FIELDS` per record.
    ends: Vec<u32>,
}

impl PackedAddresses {
    pub fn push(&mut self, a: &NewAddress) {
        self.field(a.email.as_str());
        let key_at = self.text.len();
        self.text.push_str(a.email.ascii());
        self.text[key_at..].make_ascii_lowercase();
        self.ends.push(self.text.len() as u32);
        self.field(&a.fullname);
        for v in &a.vars {
            self.field(v);
        }
        for e in [&a.extra.sex, &a.extra.birthday, &a.extra.phone, &a.extra.area] {
            self.field(e);
        }
    }

    /// The key of the last record pushed.
    pub fn last_key(&self) -> Option<&str> {
        let n = self.ends.len().checked_sub(PACKED_FIELDS)?;
        let start = self.ends[n] as usize;
        Some(&self.text[start..self.ends[n + 1] as usize])
    }

    /// Takes the last record pushed back out.
    pub fn pop(&mut self) {
        if let Some(n) = self.ends.len().checked_sub(PACKED_FIELDS) {
            let start = n.checked_sub(1).map_or(0, |e| self.ends[e] as usize);
            self.text.truncate(start);
            self.ends.truncate(n);
        }
    }

    fn field(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u32);
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl AddressRecords for PackedAddresses {
    fn count(&self) -> usize {
        self.ends.len() / PACKED_FIELDS
    }

    fn record(&self, i: usize) -> AddressRecord<'_> {
        let ends = &self.ends[i * PACKED_FIELDS..(i + 1) * PACKED_FIELDS];
        let mut start = if i == 0 {
            0
        } else {
            self.ends[i * PACKED_FIELDS - 1] as usize
        };
        let f: [&str; PACKED_FIELDS] = std::array::from_fn(|n| {
            let s = &self.text[start..ends[n] as usize];
            start = ends[n] as usize;
            s
        });
        AddressRecord {
            address: f[0],
            key: Cow::Borrowed(f[1]),
            fullname: f[2],
            vars: std::array::from_fn(|v| f[3 + v]),
            extra: [f[13], f[14], f[15], f[16]],
        }
    }
}

/// A stored address (4.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub id: i64,
    pub list_id: i64,
    pub address: String,
    pub fullname: String,
    pub created_at: i64,
    pub vars: [String; 10],
    pub extra: Extra,
}

/// The result of parsing a batch: what can be stored, and how many records
/// were malformed.
#[derive(Debug, Default)]
pub struct Parsed {
    pub entries: Vec<NewAddress>,
    pub invalid: usize,
}

fn is_field_separator(c: char) -> bool {
    c == ';' || c == '；'
}

/// One F.2.1 record: `email;name;var1;…;var10[;]`, either semicolon.
/// `None` when the address is malformed.
pub fn parse_record(record: &str) -> Option<NewAddress> {
    let mut fields = record.split(is_field_separator).map(str::trim);
    from_fields(&mut fields)
}

/// email, name, var1…var10 from already-split fields; fields past the 12th
/// are ignored.
fn from_fields<'a>(fields: &mut impl Iterator<Item = &'a str>) -> Option<NewAddress> {
    let email = EmailAddress::parse(fields.next().unwrap_or(""))?;
    let mut a = NewAddress::new(email, fields.next().unwrap_or(""));
    for (slot, value) in a.vars.iter_mut().zip(fields) {
        *slot = value.to_string();
    }
    Some(a)
}

/// Splits `ml_addr` into records by `separate` (default LF; the two-character
/// escapes `\n`, `\r\n`, `\t` mean what they say), as F.2.1 step 1.
pub fn split_records<'a>(ml_addr: &'a str, separate: Option<&str>) -> Vec<&'a str> {
    let sep = match separate {
        Some(s) if !s.is_empty() => s
            .replace("\\r\\n", "\r\n")
            .replace("\\n", "\n")
            .replace("\\t", "\t"),
        _ => "\n".to_string(),
    };
    ml_addr
        .split(sep.as_str())
        .map(|r| {
            if sep == "\n" {
                r.strip_suffix('\r').unwrap_or(r)
            } else {
                r
            }
        })
        .collect()
}

/// F.2.1 step 2 over records: empty ones skipped, malformed ones counted.
pub fn parse_records<'a>(records: impl IntoIterator<Item = &'a str>) -> Parsed {
    let mut out = Parsed::default();
    for r in records {
        let r = r.trim();
        if r.is_empty() {
            continue;
        }
        match parse_record(r) {
            Some(a) => out.entries.push(a),
            None => out.invalid += 1,
        }
    }
    out
}

/// How many records a batch holds, for the D-17 limit, without parsing them.
pub fn count_records<'a>(records: impl IntoIterator<Item = &'a str>) -> usize {
    records.into_iter().filter(|r| !r.trim().is_empty()).count()
}

/// F.2.2: `maillist` of 4.13 in either documented format, or the literal
/// illustration (an address line, then a name line).
pub fn parse_maillist(text: &str) -> Parsed {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Parsed::default();
    // Index into `out.entries` of an entry still waiting for a name line.
    let mut pending: Option<usize> = None;
    for token in text.split(|c| c == '\n' || is_field_separator(c)) {
        let t = token.trim();
        if t.is_empty() {
            continue;
        }
        if t.contains('@') {
            let (email, name) = match t.find(['\t', ',', '，']) {
                Some(i) => {
                    let sep_len = t[i..].chars().next().map_or(1, char::len_utf8);
                    (&t[..i], Some(t[i + sep_len..].trim()))
                }
                None => (t, None),
            };
            match EmailAddress::parse(email) {
                Some(e) => {
                    out.entries.push(NewAddress::new(e, name.unwrap_or("")));
                    pending = name.is_none_or(str::is_empty).then_some(out.entries.len() - 1);
                }
                None => {
                    out.invalid += 1;
                    pending = None;
                }
            }
        } else if let Some(i) = pending.take() {
            out.entries[i].fullname = t.to_string();
        } else {
            out.invalid += 1;
        }
    }
    out
}

/// F.2.3: the `address` list of 4.14, split on `,` `，` `;` `；` and white
/// space; duplicates (case-insensitive) dropped. Malformed items are dropped
/// too: they can be in no list.
pub fn parse_address_list(text: &str) -> Vec<EmailAddress> {
    let mut seen = std::collections::HashSet::new();
    text.split(|c: char| c == ',' || c == '，' || is_field_separator(c) || c.is_whitespace())
        .filter_map(EmailAddress::parse)
        .filter(|e| seen.insert(e.key()))
        .collect()
}

/// H-7: one line of an import file. A line with a semicolon is an F.2.1
/// record; otherwise its fields are split on every TAB, or else on every
/// comma, into email, name, var1…var10.
pub fn parse_import_line(line: &str) -> Option<NewAddress> {
    if line.contains(is_field_separator) {
        return parse_record(line);
    }
    if line.contains('\t') {
        from_fields(&mut line.split('\t').map(str::trim))
    } else {
        from_fields(&mut line.split([',', '，']).map(str::trim))
    }
}

/// The text encoding of an import file, decided on its first bytes (H-7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileEncoding {
    Utf8,
    Gb18030,
}

impl FileEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            FileEncoding::Utf8 => "utf-8",
            FileEncoding::Gb18030 => "gb18030",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "utf-8" => Some(FileEncoding::Utf8),
            "gb18030" => Some(FileEncoding::Gb18030),
            _ => None,
        }
    }

    fn encoding(self) -> &'static Encoding {
        match self {
            FileEncoding::Utf8 => UTF_8,
            FileEncoding::Gb18030 => GB18030,
        }
    }

    /// One line's bytes as text; `None` if they are not in this encoding.
    pub fn decode_line(self, bytes: &[u8]) -> Option<String> {
        match self {
            FileEncoding::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_string),
            enc => enc
                .encoding()
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|c| c.into_owned()),
        }
    }

    /// UTF-8 (a BOM allowed), else GB18030, judged on a prefix whose last
    /// character may be cut; `None` if it is neither.
    pub fn detect(prefix: &[u8]) -> Option<FileEncoding> {
        let body = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
        match std::str::from_utf8(body) {
            Ok(_) => return Some(FileEncoding::Utf8),
            Err(e) if e.error_len().is_none() && body.len() - e.valid_up_to() < 4 => {
                return Some(FileEncoding::Utf8);
            }
            Err(_) => {}
        }
        // GB18030 characters are at most 4 bytes: allow a cut one at the end.
        (0..4.min(body.len() + 1)).find_map(|cut| {
            GB18030
                .decode_without_bom_handling_and_without_replacement(&body[..body.len() - cut])
                .map(|_| FileEncoding::Gb18030)
        })
    }
}

/// Splits a text field for TAB-separated export lines: TAB, CR and LF become
/// one space (4.6).
pub fn export_field(s: &str) -> String {
    if s.contains(['\t', '\r', '\n']) {
        s.replace("\r\n", " ").replace(['\t', '\r', '\n'], " ")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(p: &Parsed) -> Vec<(&str, &str)> {
        p.entries
            .iter()
            .map(|a| (a.email.as_str(), a.fullname.as_str()))
            .collect()
    }

    #[test]
    fn records_of_the_original_example() {
        let ml = "comingchina@bestdem.org;comingchina;var1;var2;....var10;\ntest@bestdem.org;test;var1;var2;....var10;";
        let p = parse_records(split_records(ml, None));
        assert_eq!(
            emails(&p),
            vec![
                ("comingchina@bestdem.org", "comingchina"),
                ("test@bestdem.org", "test")
            ]
        );
        assert_eq!(p.entries[0].vars[0], "var1");
        assert_eq!(p.entries[0].vars[2], "....var10");
        assert_eq!(p.entries[0].vars[3], "");
    }

    #[test]
    fn records_default_the_name_and_count_bad_ones() {
        let p = parse_records(split_records(
            "a@b.cn\r\nnot-an-address;x\n\n  c@d.cn；Cee  ；v1 \r\n",
            None,
        ));
        assert_eq!(emails(&p), vec![("a@b.cn", "a"), ("c@d.cn", "Cee")]);
        assert_eq!(p.entries[1].vars[0], "v1");
        assert_eq!(p.invalid, 1);
    }

    #[test]
    fn custom_separators_with_escapes() {
        assert_eq!(split_records("a|b", Some("|")), vec!["a", "b"]);
        assert_eq!(split_records("a\tb", Some("\\t")), vec!["a", "b"]);
        assert_eq!(split_records("a\r\nb", Some("\\r\\n")), vec!["a", "b"]);
        assert_eq!(split_records("a##b##", Some("##")), vec!["a", "b", ""]);
    }

    #[test]
    fn fields_past_the_twelfth_are_ignored() {
        let r = parse_record("a@b.cn;n;1;2;3;4;5;6;7;8;9;10;11;12").unwrap();
        assert_eq!(r.vars[9], "10");
    }

    #[test]
    fn maillist_format_one() {
        let p = parse_maillist("test1@bestedm.com,test1;test2@bestedm.com,test2;...");
        assert_eq!(
            emails(&p),
            vec![("test1@bestedm.com", "test1"), ("test2@bestedm.com", "test2")]
        );
        assert_eq!(p.invalid, 1, "the trailing '...' is no address");
    }

    #[test]
    fn maillist_format_two_as_described_and_as_illustrated() {
        let p = parse_maillist("a@x.com\tAy\nb@x.com，Bee\nc@x.com\n");
        assert_eq!(
            emails(&p),
            vec![("a@x.com", "Ay"), ("b@x.com", "Bee"), ("c@x.com", "c")]
        );
        let literal = "test1@bestedm.com\ntest1\n\ntest2@bestedm.com\ntest2\n";
        let p = parse_maillist(literal);
        assert_eq!(
            emails(&p),
            vec![("test1@bestedm.com", "test1"), ("test2@bestedm.com", "test2")]
        );
        assert_eq!(p.invalid, 0);
    }

    #[test]
    fn address_lists_split_on_everything() {
        let l = parse_address_list(
            "test1@bestedm.com,test2@bestedm.com\n\nTEST1@bestedm.com；x@y.cn z@w.cn\tbad",
        );
        let got: Vec<&str> = l.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            got,
            vec!["test1@bestedm.com", "test2@bestedm.com", "x@y.cn", "z@w.cn"]
        );
    }

    #[test]
    fn import_lines_by_separator() {
        let a = parse_import_line("a@b.cn;Name;v1").unwrap();
        assert_eq!((a.fullname.as_str(), a.vars[0].as_str()), ("Name", "v1"));
        let a = parse_import_line("a@b.cn\tName, Jr.\tv1").unwrap();
        assert_eq!((a.fullname.as_str(), a.vars[0].as_str()), ("Name, Jr.", "v1"));
        let a = parse_import_line("a@b.cn,Name,v1,v2").unwrap();
        assert_eq!((a.fullname.as_str(), a.vars[1].as_str()), ("Name", "v2"));
        let a = parse_import_line("a@b.cn，名字").unwrap();
        assert_eq!(a.fullname, "名字");
        assert!(parse_import_line("email,name").is_none());
    }

    #[test]
    fn encodings_are_detected_on_a_prefix() {
        assert_eq!(FileEncoding::detect(b"a@b.cn;x\n"), Some(FileEncoding::Utf8));
        assert_eq!(
            FileEncoding::detect("\u{feff}a@b.cn;张三\n".as_bytes()),
            Some(FileEncoding::Utf8)
        );
        // A UTF-8 character cut by the end of the prefix.
        let s = "a@b.cn;张三".as_bytes();
        assert_eq!(FileEncoding::detect(&s[..s.len() - 1]), Some(FileEncoding::Utf8));
        // "张三" in GBK.
        assert_eq!(
            FileEncoding::detect(b"a@b.cn;\xD5\xC5\xC8\xFD\n"),
            Some(FileEncoding::Gb18030)
        );
        assert_eq!(
            FileEncoding::Gb18030.decode_line(b"\xD5\xC5\xC8\xFD").as_deref(),
            Some("张三")
        );
        assert_eq!(FileEncoding::detect(b"\xFF\xFF\xFF\xFF\xFF"), None);
    }

    #[test]
    fn packed_records_read_back_as_pushed() {
        let rows: Vec<NewAddress> = ["A@Example.CN;Ay;1;2", "b@x.cn", "c@例子.中国;;;;;;;;;;;ten"]
            .into_iter()
            .map(|l| parse_import_line(l).unwrap())
            .collect();
        let mut packed = PackedAddresses::default();
        for r in &rows {
            packed.push(r);
        }
        assert_eq!(packed.count(), 3);
        for i in 0..3 {
            let (p, r) = (packed.record(i), rows.record(i));
            assert_eq!(
                (p.address, p.key.as_ref(), p.fullname, p.vars, p.extra),
                (r.address, r.key.as_ref(), r.fullname, r.vars, r.extra)
            );
        }
        assert_eq!(packed.record(0).key, "a@example.cn");
        assert_eq!(packed.record(2).key, "c@xn--fsqu00a.xn--fiqs8s");
        assert_eq!(packed.record(2).vars[9], "ten");
    }

    #[test]
    fn export_fields_have_no_separators() {
        assert_eq!(export_field("a\tb\r\nc"), "a b c");
    }
}
