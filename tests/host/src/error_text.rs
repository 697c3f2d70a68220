//! The texts of errors that the host hands the component, as Spin's read.

/// An error as Spin's `connection-failed` text has it: anyhow's `{:?}` of the
/// pool's error (`format!("{e:?}")` in `factor-outbound-pg`), the message and
/// then its causes on lines of their own, numbered when there are two or more:
///
/// ```text
/// Error occurred while creating a new object: error connecting to server
///
/// Caused by:
///     0: error connecting to server
///     1: Connection refused (os error 111)
/// ```
///
/// (the shim's tokio-postgres, like this host's, leaves the cause out of its
/// own message; Spin's backtrace, with `RUST_BACKTRACE`, is not reproduced).
pub(crate) fn anyhow_debug(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let Some(first) = err.source() else {
        return text;
    };
    text.push_str("\n\nCaused by:");
    let numbered = first.source().is_some();
    let mut cause = Some(first);
    let mut number = 0;
    while let Some(error) = cause {
        let prefix = if numbered {
            format!("{number: >5}: ")
        } else {
            "    ".to_string()
        };
        let indent = " ".repeat(prefix.len());
        for (index, line) in error.to_string().lines().enumerate() {
            text.push('\n');
            text.push_str(if index == 0 { &prefix } else { &indent });
            text.push_str(line);
        }
        cause = error.source();
        number += 1;
    }
    text
}

/// An error and its causes on one line, as Spin 3.6.3's tokio-postgres (0.7.12)
/// writes them: its messages carry their cause (`invalid connection string:
/// invalid value for option `port``, `db error: ERROR: ...`). A cause whose
/// text its parent already ends with is not repeated.
pub(crate) fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|layer| layer as _)
        }
    }

    #[test]
    fn connection_errors_read_as_spins() {
        let refused = Layer(
            "Error occurred while creating a new object: error connecting to server",
            Some(Box::new(Layer(
                "error connecting to server",
                Some(Box::new(Layer("Connection refused (os error 111)", None))),
            ))),
        );
        assert_eq!(
            anyhow_debug(&refused),
            "Error occurred while creating a new object: error connecting to server\n\n\
             Caused by:\n    0: error connecting to server\n    1: Connection refused (os error 111)"
        );
        let one_cause = Layer(
            "db error",
            Some(Box::new(Layer("FATAL: x\nDETAIL: y", None))),
        );
        assert_eq!(
            anyhow_debug(&one_cause),
            "db error\n\nCaused by:\n    FATAL: x\n    DETAIL: y"
        );
        assert_eq!(anyhow_debug(&Layer("alone", None)), "alone");
    }
}
