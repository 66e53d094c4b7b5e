//! Job states and ids: the vocabulary of the queue, stored as text.

use std::fmt;
use std::str::FromStr;

/// A job's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a job is in its life.
///
/// `queued → leased → done`, or `leased → failed → (backoff) → leased …`, or
/// `leased → dead` once its attempts are used up. `cancelled` is set by a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Leased,
    Done,
    Failed,
    Dead,
    Cancelled,
}

impl JobState {
    /// Settled jobs will not run again unless a user retries them.
    pub fn is_settled(self) -> bool {
        matches!(self, JobState::Done | JobState::Dead | JobState::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown state {0:?} in the database")]
pub struct UnknownState(pub String);

/// Where a version of a file stands. Stored as lowercase text.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    /// The current version, read and chunked.
    #[default]
    Active,
    /// Not read (binary, invalid UTF-8, empty, too large, unreadable) or skipped by the walk.
    Refused,
    /// An older version of a file that changed.
    Superseded,
    /// The file is no longer in its folder.
    Gone,
}

/// What the checks and the validator made of a finding. Stored as lowercase text.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FindingStatus {
    /// Passed the deterministic checks; waits for the validator (or the planner).
    #[default]
    Pending,
    Accepted,
    Rejected,
}

/// The stored text of a state enum, both ways: `ALL`, `as_str` and `FromStr`, from one list
/// of variants and their text; and as a column of text in any database sqlx knows.
macro_rules! stored_text {
    ($($t:ident { $($v:ident => $text:literal),+ $(,)? })*) => {$(
        impl $t {
            pub const ALL: [$t; [$($text),+].len()] = [$($t::$v),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($t::$v => $text),+
                }
            }
        }

        impl FromStr for $t {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|st| st.as_str() == s)
                    .ok_or_else(|| UnknownState(s.to_string()))
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $t
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $t
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $t
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<&'r str as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }
    )*};
}

stored_text! {
    JobState {
        Queued => "queued",
        Leased => "leased",
        Done => "done",
        Failed => "failed",
        Dead => "dead",
        Cancelled => "cancelled",
    }
    SourceStatus {
        Active => "active",
        Refused => "refused",
        Superseded => "superseded",
        Gone => "gone",
    }
    FindingStatus {
        Pending => "pending",
        Accepted => "accepted",
        Rejected => "rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_text() {
        for st in JobState::ALL {
            assert_eq!(st.as_str().parse::<JobState>().unwrap(), st);
        }
        assert!("running".parse::<JobState>().is_err());
        for st in SourceStatus::ALL {
            assert_eq!(st.as_str().parse::<SourceStatus>().unwrap(), st);
        }
        for st in FindingStatus::ALL {
            assert_eq!(st.as_str().parse::<FindingStatus>().unwrap(), st);
        }
    }
}
