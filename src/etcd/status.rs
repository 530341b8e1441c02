//! Datastore errors as gRPC statuses. Codes follow etcd's `rpctypes`; the
//! messages are etcd's texts, which Go clients match on to rebuild typed
//! errors (`rpctypes.ErrCompacted` and friends), so they pass through as-is.

use tonic::{Code, Status};

use crate::datastore::Error;

/// The gRPC code etcd uses for each error.
pub(crate) fn code(err: &Error) -> Code {
    match err {
        Error::Compacted { .. } | Error::FutureRevision | Error::LeaseTtlTooLarge => {
            Code::OutOfRange
        }
        Error::EmptyKey
        | Error::KeyNotFound
        | Error::RequestTooLarge
        | Error::TooManyOps
        | Error::DuplicateKey => Code::InvalidArgument,
        Error::LeaseNotFound => Code::NotFound,
        Error::LeaseExists => Code::FailedPrecondition,
        Error::Stopped => Code::Unavailable,
        Error::Storage(_) => Code::Internal,
    }
}

pub(crate) fn to_status(err: Error) -> Status {
    if matches!(err, Error::Storage(_)) {
        // The client only sees "internal"; keep the cause in our logs.
        tracing::warn!(%err, "datastore failure");
    } else {
        tracing::debug!(%err, "request refused");
    }
    Status::new(code(&err), err.to_string())
}

/// What long-lived streams end with when the server shuts down (etcd's
/// ErrGRPCStopped); Go clients retry on Unavailable.
pub(crate) fn server_stopped() -> Status {
    Status::unavailable("etcdserver: server stopped")
}

/// Refusal for membership changes; etcd has no text for this case.
pub(crate) const SINGLE_MEMBER: &str =
    "etcdserver: nanokube datastore is a single member; membership cannot change";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_etcd_rpctypes() {
        let cases = [
            (
                Error::Compacted {
                    compact_revision: 3,
                },
                Code::OutOfRange,
            ),
            (Error::FutureRevision, Code::OutOfRange),
            (Error::EmptyKey, Code::InvalidArgument),
            (Error::KeyNotFound, Code::InvalidArgument),
            (Error::LeaseNotFound, Code::NotFound),
            (Error::LeaseExists, Code::FailedPrecondition),
            (Error::LeaseTtlTooLarge, Code::OutOfRange),
            (Error::RequestTooLarge, Code::InvalidArgument),
            (Error::TooManyOps, Code::InvalidArgument),
            (Error::DuplicateKey, Code::InvalidArgument),
            (Error::Stopped, Code::Unavailable),
            (Error::Storage("disk on fire".into()), Code::Internal),
        ];
        for (err, want) in cases {
            assert_eq!(code(&err), want, "{err}");
        }
    }

    #[test]
    fn message_is_etcds_text() {
        let status = to_status(Error::Compacted {
            compact_revision: 7,
        });
        assert_eq!(status.code(), Code::OutOfRange);
        assert_eq!(
            status.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let status = to_status(Error::LeaseNotFound);
        assert_eq!(status.message(), "etcdserver: requested lease not found");
    }
}
