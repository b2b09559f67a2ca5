//! Numbers read from result cells, and their sum and order.
//!
//! Exact values (integers, `decimal` text) stay exact as an `i128` mantissa with a decimal scale,
//! so a total of money amounts prints the digits the database would; floats, and exact values too
//! large for an `i128`, are `f64`. Nothing here panics: every step that could overflow is checked
//! and falls back to `f64`.

use core::cmp::Ordering;

/// Most fractional digits kept exactly; `10^MAX_SCALE` fits an `i128` with room for the mantissa.
const MAX_SCALE: u32 = 30;
/// Longer texts cannot fit an `i128` mantissa, so they are read as `f64` straight away (and
/// parsing a huge text exactly would only fail later).
const MAX_EXACT_LEN: usize = 40;

/// A finite number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    /// `mantissa / 10^scale`, exactly.
    Exact { mantissa: i128, scale: u32 },
    /// An approximate value; always finite.
    Approx(f64),
}

/// What a numeric text or float turned out to be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reading {
    /// A finite number.
    Number(Num),
    /// `NaN` or an infinity: numeric in kind, but left out of every statistic.
    NonFinite,
    /// Not a number at all.
    NotNumeric,
}

impl Num {
    /// Read a float.
    pub(crate) fn from_f64(x: f64) -> Reading {
        if x.is_finite() { Reading::Number(Num::Approx(x)) } else { Reading::NonFinite }
    }

    /// Read an integer.
    pub(crate) fn from_i64(n: i64) -> Num {
        Num::Exact { mantissa: i128::from(n), scale: 0 }
    }

    /// Read a decimal text (`-12.50`, `1e3`, `NaN`, ...), exactly when it fits.
    pub(crate) fn parse(text: &str) -> Reading {
        let t = text.trim();
        if t.len() <= MAX_EXACT_LEN
            && let Some(n) = parse_exact(t)
        {
            return Reading::Number(n);
        }
        // Exponents and very long digit strings: approximately. Rust also reads `inf` and `NaN`
        // here, which is what PostgreSQL prints for those numeric values.
        match t.parse::<f64>() {
            Ok(x) => Num::from_f64(x),
            Err(_) => Reading::NotNumeric,
        }
    }

    /// The value as an `f64` (approximate for exact values with many digits).
    pub(crate) fn to_f64(self) -> f64 {
        match self {
            Num::Exact { mantissa, scale } => mantissa as f64 / 10f64.powi(scale.min(MAX_SCALE) as i32),
            Num::Approx(x) => x,
        }
    }

    /// Order two numbers, exactly when both are exact and their scales can be aligned.
    pub(crate) fn cmp(self, other: Num) -> Ordering {
        if let (Num::Exact { mantissa: a, scale: sa }, Num::Exact { mantissa: b, scale: sb }) = (self, other) {
            let s = sa.max(sb);
            if let (Some(a), Some(b)) = (rescale(a, sa, s), rescale(b, sb, s)) {
                return a.cmp(&b);
            }
        }
        // Both are finite, so `partial_cmp` only fails for values we never build.
        self.to_f64().partial_cmp(&other.to_f64()).unwrap_or(Ordering::Equal)
    }
}

/// `[+-]digits[.digits]` into an exact number, or `None` when it has another form or overflows.
fn parse_exact(t: &str) -> Option<Num> {
    let (negative, body) = match t.as_bytes().first()? {
        b'-' => (true, t.get(1..)?),
        b'+' => (false, t.get(1..)?),
        _ => (false, t),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = u32::try_from(frac.len()).ok().filter(|s| *s <= MAX_SCALE)?;
    let mut mantissa: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    Some(Num::Exact { mantissa: if negative { -mantissa } else { mantissa }, scale })
}

/// `mantissa` at scale `from`, expressed at the larger scale `to`; `None` on overflow.
fn rescale(mantissa: i128, from: u32, to: u32) -> Option<i128> {
    mantissa.checked_mul(10i128.checked_pow(to.checked_sub(from)?)?)
}

/// A running sum: exact while every term is exact and nothing overflows, `f64` after that.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sum {
    /// The exact sum so far, `None` once a term was approximate or the sum overflowed.
    exact: Option<(i128, u32)>,
    approx: f64,
    inexact: bool,
    count: usize,
}

impl Sum {
    /// Add one term.
    pub(crate) fn add(&mut self, n: Num) {
        self.approx += n.to_f64();
        self.count += 1;
        if self.inexact {
            return;
        }
        let next = match n {
            Num::Approx(_) => None,
            Num::Exact { mantissa, scale } => {
                let (m0, s0) = self.exact.unwrap_or((0, 0));
                let s = s0.max(scale);
                match (rescale(m0, s0, s), rescale(mantissa, scale, s)) {
                    (Some(a), Some(b)) => a.checked_add(b).map(|m| (m, s)),
                    _ => None,
                }
            }
        };
        self.exact = next;
        self.inexact = next.is_none();
    }

    /// How many terms were added.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The total; `None` when it is not finite (floats near `f64::MAX` add up to infinity).
    pub(crate) fn total(&self) -> Option<Num> {
        match self.exact {
            Some((mantissa, scale)) => Some(Num::Exact { mantissa, scale }),
            None if !self.inexact => Some(Num::Exact { mantissa: 0, scale: 0 }),
            None => self.approx.is_finite().then_some(Num::Approx(self.approx)),
        }
    }

    /// The mean of the terms, when there are any and it is finite.
    pub(crate) fn mean(&self) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let mean = self.total()?.to_f64() / self.count as f64;
        mean.is_finite().then_some(mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_and_approximate_forms() {
        assert_eq!(Num::parse("-12.50"), Reading::Number(Num::Exact { mantissa: -1250, scale: 2 }));
        assert_eq!(Num::parse("+.5"), Reading::Number(Num::Exact { mantissa: 5, scale: 1 }));
        assert_eq!(Num::parse("1e3"), Reading::Number(Num::Approx(1000.0)));
        assert_eq!(Num::parse("NaN"), Reading::NonFinite);
        assert_eq!(Num::parse("-Infinity"), Reading::NonFinite);
        assert_eq!(Num::parse("1e400"), Reading::NonFinite);
        for bad in ["", "-", "+", ".", "-.", "1.2.3", "12a", "--1", "١٢"] {
            assert_eq!(Num::parse(bad), Reading::NotNumeric, "{bad:?}");
        }
        // 39 nines overflow an i128 mantissa: read approximately instead.
        assert!(matches!(Num::parse(&"9".repeat(39)), Reading::Number(Num::Approx(_))));
    }

    #[test]
    fn sums_exactly_until_it_cannot() {
        let mut s = Sum::default();
        for t in ["12.50", "3.25", "1"] {
            if let Reading::Number(n) = Num::parse(t) {
                s.add(n);
            }
        }
        assert_eq!(s.total(), Some(Num::Exact { mantissa: 1675, scale: 2 }));
        s.add(Num::from_i64(i64::MAX));
        s.add(Num::Exact { mantissa: i128::MAX, scale: 0 });
        assert!(matches!(s.total(), Some(Num::Approx(_))));
        let mut inf = Sum::default();
        inf.add(Num::Approx(f64::MAX));
        inf.add(Num::Approx(f64::MAX));
        assert_eq!(inf.total(), None);
        assert_eq!(inf.mean(), None);
    }

    #[test]
    fn orders_exact_values_exactly() {
        let a = Num::Exact { mantissa: 10000000000000000000000000000001, scale: 0 };
        let b = Num::Exact { mantissa: 10000000000000000000000000000000, scale: 0 };
        assert_eq!(a.cmp(b), Ordering::Greater);
        assert_eq!(Num::Exact { mantissa: 150, scale: 2 }.cmp(Num::from_i64(1)), Ordering::Greater);
        assert_eq!(Num::Approx(-0.5).cmp(Num::from_i64(0)), Ordering::Less);
    }
}
