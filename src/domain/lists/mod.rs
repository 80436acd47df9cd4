//! Contact lists and their addresses: the record formats of the vendor
//! API (F.2, H-7), and the rules every way of adding an address shares
//! (D-15, D-16).

mod cases;
mod pages;

pub use cases::*;
pub use pages::Pages;

use std::borrow::Cow;

use encoding_rs::{Encoding, GB18030, UTF_8};

use super::email::EmailAddress;
use super::ids::{AddressId, ListId};

/// The most records one `ml_addr`, `maillist` or `address` batch may carry (D-17).
pub const MAX_BATCH: usize = 100_000;
/// Longest list name and description, in characters (4.3).
pub const MAX_SUBJECT: usize = 100;
pub const MAX_DESCRIPTION: usize = 1000;

/// The customer's addresses that are in no list (list 0 of the vendor API).
pub const UNCLASSIFIED: ListId = ListId(0);

/// A list's name: not blank, at most [`MAX_SUBJECT`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListName(String);

impl ListName {
    /// The name trimmed; `NameRequired` when blank, `NameTooLong` past the limit.
    pub fn parse(s: &str) -> Result<ListName, ListError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ListError::NameRequired);
        }
        if s.chars().count() > MAX_SUBJECT {
            return Err(ListError::NameTooLong { max: MAX_SUBJECT });
        }
        Ok(ListName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A list's description: at most [`MAX_DESCRIPTION`] characters; empty is none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListDescription(String);

impl ListDescription {
    /// The description trimmed; `DescriptionTooLong` past the limit.
    pub fn parse(s: &str) -> Result<ListDescription, ListError> {
        let s = s.trim();
        if s.chars().count() > MAX_DESCRIPTION {
            return Err(ListError::DescriptionTooLong { max: MAX_DESCRIPTION });
        }
        Ok(ListDescription(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
    pub id: ListId,
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

impl Extra {
    /// `sex` as kept: `F` or `M` in either case, or empty for none.
    pub fn parse_sex(v: &str) -> Option<String> {
        match v.trim().to_ascii_uppercase().as_str() {
            s @ ("" | "F" | "M") => Some(s.to_string()),
            _ => None,
        }
    }

    /// `birthday` as kept: a date (`YYYY-M-D`), written `YYYY-MM-DD`, or
    /// empty for none.
    pub fn parse_birthday(v: &str) -> Option<String> {
        match v.trim() {
            "" => Some(String::new()),
            v => crate::clock::parse_date(v).ok().map(crate::clock::format_date),
        }
    }
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

/// The names of an address's ten variables, as the API and the templates
/// call them.
pub const VAR_NAMES: [&str; 10] = [
    "var1", "var2", "var3", "var4", "var5", "var6", "var7", "var8", "var9", "var10",
];

/// A stored address (4.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub id: AddressId,
    pub list_id: ListId,
    pub address: String,
    pub fullname: String,
    pub created_at: i64,
    pub vars: [String; 10],
    pub extra: Extra,
}

/// One row of a batch as it was read: an address to add, or what was given
/// where an address should have been.
// Nearly every row is an address: boxing it would cost an allocation per
// row to save space on the few that are not.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchRow {
    Address(NewAddress),
    /// Not an e-mail address; the text given for it.
    Invalid(String),
}

impl BatchRow {
    pub fn address(&self) -> Option<&NewAddress> {
        match self {
            BatchRow::Address(a) => Some(a),
            BatchRow::Invalid(_) => None,
        }
    }
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

/// One F.2.1 record as a batch row; an invalid one keeps its first field.
fn record_row(record: &str) -> BatchRow {
    match parse_record(record) {
        Some(a) => BatchRow::Address(a),
        None => BatchRow::Invalid(
            record
                .split(is_field_separator)
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
    }
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

/// F.2.1 step 2 over records: blank ones skipped, the others read as
/// [`BatchRow`]s one by one as they are taken, so that a batch is counted
/// (against [`MAX_BATCH`]) before any of it is parsed.
pub fn parse_records<'a>(
    records: impl IntoIterator<Item = &'a str>,
) -> impl ExactSizeIterator<Item = BatchRow> + Send + 'a {
    let kept: Vec<&'a str> = records
        .into_iter()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    kept.into_iter().map(record_row)
}

/// F.2.2: `maillist` of 4.13 in either documented format, or the literal
/// illustration (an address line, then a name line).
pub fn parse_maillist(text: &str) -> Vec<BatchRow> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::new();
    // Index into `out` of an address still waiting for a name line.
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
                    out.push(BatchRow::Address(NewAddress::new(e, name.unwrap_or(""))));
                    pending = name.is_none_or(str::is_empty).then_some(out.len() - 1);
                }
                None => {
                    out.push(BatchRow::Invalid(email.trim().to_string()));
                    pending = None;
                }
            }
        } else if let Some(BatchRow::Address(a)) = pending.take().and_then(|i| out.get_mut(i)) {
            a.fullname = t.to_string();
        } else {
            out.push(BatchRow::Invalid(t.to_string()));
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

/// An address's export line (4.6): the address and the name, TAB-separated,
/// then LF.
pub fn export_line(out: &mut Vec<u8>, a: &Address) {
    out.extend_from_slice(export_field(&a.address).as_bytes());
    out.push(b'\t');
    out.extend_from_slice(export_field(&a.fullname).as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(rows: &[BatchRow]) -> Vec<(&str, &str)> {
        rows.iter()
            .filter_map(BatchRow::address)
            .map(|a| (a.email.as_str(), a.fullname.as_str()))
            .collect()
    }

    fn invalid(rows: &[BatchRow]) -> Vec<&str> {
        rows.iter()
            .filter_map(|r| match r {
                BatchRow::Invalid(given) => Some(given.as_str()),
                BatchRow::Address(_) => None,
            })
            .collect()
    }

    #[test]
    fn records_of_the_original_example() {
        let ml = "comingchina@bestdem.org;comingchina;var1;var2;....var10;\ntest@bestdem.org;test;var1;var2;....var10;";
        let p: Vec<BatchRow> = parse_records(split_records(ml, None)).collect();
        assert_eq!(
            emails(&p),
            vec![
                ("comingchina@bestdem.org", "comingchina"),
                ("test@bestdem.org", "test")
            ]
        );
        let first = p[0].address().unwrap();
        assert_eq!(first.vars[0], "var1");
        assert_eq!(first.vars[2], "....var10");
        assert_eq!(first.vars[3], "");
    }

    #[test]
    fn records_default_the_name_and_count_bad_ones() {
        let rows = parse_records(split_records(
            "a@b.cn\r\nnot-an-address;x\n\n  c@d.cn；Cee  ；v1 \r\n",
            None,
        ));
        assert_eq!(
            rows.len(),
            3,
            "counted before they are read; the blank one is none"
        );
        let p: Vec<BatchRow> = rows.collect();
        assert_eq!(emails(&p), vec![("a@b.cn", "a"), ("c@d.cn", "Cee")]);
        assert_eq!(p[2].address().unwrap().vars[0], "v1");
        assert_eq!(
            invalid(&p),
            vec!["not-an-address"],
            "in its place, first field only"
        );
        assert!(p[1].address().is_none());
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
        assert_eq!(invalid(&p), vec!["..."], "the trailing '...' is no address");
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
        assert!(invalid(&p).is_empty());
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
    fn list_names_and_descriptions_have_limits_in_characters() {
        assert_eq!(ListName::parse("  客户 ").unwrap().as_str(), "客户");
        assert!(matches!(ListName::parse(" "), Err(ListError::NameRequired)));
        assert!(ListName::parse(&"名".repeat(MAX_SUBJECT)).is_ok());
        assert!(matches!(
            ListName::parse(&"名".repeat(MAX_SUBJECT + 1)),
            Err(ListError::NameTooLong { max: MAX_SUBJECT })
        ));
        assert_eq!(ListDescription::parse("").unwrap().as_str(), "");
        assert!(ListDescription::parse(&"x".repeat(MAX_DESCRIPTION + 1)).is_err());
    }

    #[test]
    fn extra_fields_are_normalised_or_refused() {
        assert_eq!(Extra::parse_sex(" m ").as_deref(), Some("M"));
        assert_eq!(Extra::parse_sex("").as_deref(), Some(""));
        assert_eq!(Extra::parse_sex("X"), None);
        assert_eq!(Extra::parse_birthday("1990-7-4").as_deref(), Some("1990-07-04"));
        assert_eq!(Extra::parse_birthday("2012-02-30"), None);
        assert_eq!(Extra::parse_birthday(" ").as_deref(), Some(""));
    }

    #[test]
    fn export_fields_have_no_separators() {
        assert_eq!(export_field("a\tb\r\nc"), "a b c");
    }
}
