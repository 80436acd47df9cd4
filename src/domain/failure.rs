//! Failure classes (docs/interface.md "Failure classes", vendor API H-4): why a
//! recipient was not reached, with the vendor's numeric codes. Every part of
//! the system that records, counts or exports a failure uses this one type.

use std::fmt;

/// A permanent failure of one recipient. Complaints (type 5, `rubbish`) and
/// deferrals are not failures and have no variant here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// 1: the mailbox does not exist (5.1.1, 5.1.10, "user unknown").
    NotExist,
    /// 2: the mailbox is full (5.2.2, and 4.2.2 after the last retry).
    OverQuota,
    /// 3: any other permanent refusal by the recipient's server.
    UserReject,
    /// 8: the domain can't receive mail (no MX/A, 5.1.2, 5.4.4, never answers).
    InvalidAddr,
    /// 9: the address is not a valid address; refused before sending.
    FormatError,
}

impl FailureClass {
    pub const ALL: [FailureClass; 5] = [
        FailureClass::NotExist,
        FailureClass::OverQuota,
        FailureClass::UserReject,
        FailureClass::InvalidAddr,
        FailureClass::FormatError,
    ];

    /// The vendor's numeric code (2.3/2.4 exports, `fail_type`).
    pub fn code(self) -> u8 {
        match self {
            FailureClass::NotExist => 1,
            FailureClass::OverQuota => 2,
            FailureClass::UserReject => 3,
            FailureClass::InvalidAddr => 8,
            FailureClass::FormatError => 9,
        }
    }

    /// The wire name (`not_exist`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::NotExist => "not_exist",
            FailureClass::OverQuota => "over_quota",
            FailureClass::UserReject => "user_reject",
            FailureClass::InvalidAddr => "invalid_addr",
            FailureClass::FormatError => "format_error",
        }
    }

    /// A hard bounce: the mailbox or the domain does not exist, so the
    /// customer's later tasks skip the address (vendor API H-5).
    pub fn is_hard(self) -> bool {
        matches!(self, FailureClass::NotExist | FailureClass::InvalidAddr)
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_the_vendors() {
        let pairs: Vec<(u8, &str)> = FailureClass::ALL.iter().map(|c| (c.code(), c.as_str())).collect();
        assert_eq!(
            pairs,
            [
                (1, "not_exist"),
                (2, "over_quota"),
                (3, "user_reject"),
                (8, "invalid_addr"),
                (9, "format_error")
            ]
        );
    }

    #[test]
    fn round_trips() {
        for c in FailureClass::ALL {
            assert_eq!(FailureClass::from_code(c.code()), Some(c));
            assert_eq!(FailureClass::parse(c.as_str()), Some(c));
        }
        assert_eq!(FailureClass::from_code(4), None);
        assert_eq!(FailureClass::parse("complaint"), None);
    }
}
