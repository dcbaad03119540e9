//! The OpenMetrics text format (OpenMetrics 1.0, the exposition format Prometheus scrapes with
//! `Accept: application/openmetrics-text`): metric families with `# TYPE`, `# UNIT` and `# HELP`
//! lines, their samples, and the closing `# EOF`.
//!
//! The writer only checks what it must to emit valid text: names are taken from constants in
//! this crate (checked by a test), label values and help texts are escaped.

use std::fmt::Write as _;

/// The media type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A metric family's type (OpenMetrics "MetricFamily Type").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that only goes up; samples are written `NAME_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Constant labels describing the target; samples are written `NAME_info ... 1`.
    Info,
    /// A set of boolean states, one sample per state labelled with the family's own name.
    StateSet,
    /// Observations in buckets: samples `NAME_bucket{le=...}` (cumulative), `NAME_count`,
    /// `NAME_sum`, each sample naming its own suffix.
    Histogram,
}

impl Kind {
    fn keyword(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Info => "info",
            Self::StateSet => "stateset",
            Self::Histogram => "histogram",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Counter => "_total",
            Self::Info => "_info",
            Self::Gauge | Self::StateSet | Self::Histogram => "",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

/// One sample: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Added to the family's name (a histogram's `_bucket`, `_count`, `_sum`); empty otherwise.
    pub suffix: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

/// A metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    /// The unit, if any; the name must then end with `_<unit>`.
    pub unit: Option<&'static str>,
    pub help: &'static str,
    pub samples: Vec<Sample>,
}

impl Family {
    /// A family without samples.
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Self {
            name,
            kind,
            unit: None,
            help,
            samples: Vec::new(),
        }
    }

    /// Sets the unit.
    pub fn unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    /// Adds an unlabelled sample.
    pub fn value(self, value: Value) -> Self {
        self.sample(&[], value)
    }

    /// Adds a sample.
    pub fn sample(mut self, labels: &[(&'static str, &str)], value: Value) -> Self {
        self.samples.push(Sample {
            suffix: "",
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            value,
        });
        self
    }

    /// A histogram's samples: cumulative `(upper bound, count)` buckets, then `+Inf`, count and
    /// sum.
    pub fn histogram(mut self, buckets: &[(f64, u64)], count: u64, sum: f64) -> Self {
        let bucket = |le: String, n: u64| Sample {
            suffix: "_bucket",
            labels: vec![("le", le)],
            value: Value::Int(n),
        };
        for (bound, n) in buckets {
            self.samples.push(bucket(format!("{bound:?}"), *n));
        }
        self.samples.push(bucket("+Inf".into(), count));
        self.samples.push(Sample {
            suffix: "_count",
            labels: Vec::new(),
            value: Value::Int(count),
        });
        self.samples.push(Sample {
            suffix: "_sum",
            labels: Vec::new(),
            value: Value::Float(sum),
        });
        self
    }
}

/// The families as OpenMetrics text, ending with `# EOF`.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        write_family(&mut out, family);
    }
    out.push_str("# EOF\n");
    out
}

fn write_family(out: &mut String, f: &Family) {
    let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.keyword());
    if let Some(unit) = f.unit {
        let _ = writeln!(out, "# UNIT {} {unit}", f.name);
    }
    let _ = writeln!(out, "# HELP {} {}", f.name, escape(f.help));
    for sample in &f.samples {
        out.push_str(f.name);
        out.push_str(f.kind.suffix());
        out.push_str(sample.suffix);
        write_labels(out, &sample.labels);
        out.push(' ');
        write_value(out, sample.value);
        out.push('\n');
    }
}

fn write_labels(out: &mut String, labels: &[(&'static str, String)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"{}\"", escape(value));
    }
    out.push('}');
}

fn write_value(out: &mut String, value: Value) {
    let _ = match value {
        Value::Int(v) => write!(out, "{v}"),
        Value::Float(v) if v.is_nan() => write!(out, "NaN"),
        Value::Float(v) if v.is_infinite() => write!(out, "{}Inf", if v > 0.0 { "+" } else { "-" }),
        // Debug keeps a decimal point or exponent, so the value reads back as a float.
        Value::Float(v) => write!(out, "{v:?}"),
    };
}

/// Escapes `\`, `"` and line feeds, as label values and help texts require.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `name` is a valid metric or label name (`[a-zA-Z_][a-zA-Z0-9_]*`; we use no colons).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_in_order_with_suffixes_and_eof() {
        let text = render(&[
            Family::new("oe_acquires", Kind::Counter, "ACQUIREs").value(Value::Int(9)),
            Family::new("oe_uptime_seconds", Kind::Gauge, "Up")
                .unit("seconds")
                .value(Value::Int(5)),
            Family::new("oe_build", Kind::Info, "Build")
                .sample(&[("version", "1.0")], Value::Int(1)),
        ]);
        assert_eq!(
            text,
            "# TYPE oe_acquires counter\n# HELP oe_acquires ACQUIREs\noe_acquires_total 9\n\
             # TYPE oe_uptime_seconds gauge\n# UNIT oe_uptime_seconds seconds\n\
             # HELP oe_uptime_seconds Up\noe_uptime_seconds 5\n\
             # TYPE oe_build info\n# HELP oe_build Build\noe_build_info{version=\"1.0\"} 1\n# EOF\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let text = render(&[Family::new("x", Kind::Gauge, "a \"b\"\nc\\")
            .sample(&[("reason", "say \"hi\"\n\\o/"), ("b", "2")], Value::Int(1))]);
        assert!(text.contains("# HELP x a \\\"b\\\"\\nc\\\\\n"), "{text}");
        assert!(
            text.contains("x{reason=\"say \\\"hi\\\"\\n\\\\o/\",b=\"2\"} 1\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 4, "no raw line feed leaks: {text}");
    }

    #[test]
    fn floats_keep_a_decimal_point() {
        let mut out = String::new();
        for v in [0.0, 12.0, 0.25, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            write_value(&mut out, Value::Float(v));
            out.push(' ');
        }
        assert_eq!(out, "0.0 12.0 0.25 NaN +Inf -Inf ");
    }

    #[test]
    fn names() {
        assert!(valid_name("oe_trigger_queries"));
        assert!(!valid_name("oe-trigger"));
        assert!(!valid_name("9oe"));
        assert!(!valid_name(""));
    }
}
