//! Results stored in a shard folder and read back bit for bit.
//!
//! A merged report must be byte-identical to the report of the whole sweep, so a run's result
//! has to come back from a shard exactly as it was computed: every `f64` with its very bits,
//! NaN included (a message that never reached everyone has NaN times). JSON numbers cannot
//! carry NaN, and a float parser need not round-trip every value, so an `f64` is stored as
//! text that Rust parses back to the same bits (`0.1`, `NaN`, `1e300`), or as its bits in hex
//! (`0x7ff8000000000001`) when no such text exists (a NaN with another sign or payload).

use std::collections::BTreeMap;

use serde_json::Value;
use sim_core::addr::NodeAddr;

/// A value stored in a shard's `results.jsonl` and loaded back identical.
pub(super) trait Exact: Sized {
    /// The value as JSON.
    fn store(&self) -> Value;
    /// The value stored by [`Exact::store`], or why `v` is not one.
    fn load(v: &Value) -> Result<Self, String>;
}

/// Implements [`Exact`] for a struct, field by field, as a JSON object. Leaving a field out of
/// the list does not compile (the struct expression in `load` names every field it builds).
macro_rules! exact_struct {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl $crate::experiment::exact::Exact for $t {
            fn store(&self) -> serde_json::Value {
                let mut m = serde_json::Map::new();
                $( m.insert(stringify!($f).to_owned(), self.$f.store()); )*
                serde_json::Value::Object(m)
            }
            fn load(v: &serde_json::Value) -> Result<Self, String> {
                Ok(Self {
                    $( $f: $crate::experiment::exact::Exact::load(
                        $crate::experiment::exact::field(v, stringify!($f))?,
                    )?, )*
                })
            }
        }
    };
}
pub(super) use exact_struct;

/// Field `name` of a stored object.
pub(super) fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name)
        .ok_or_else(|| format!("no field {name:?} in {}", brief(v)))
}

/// A stored value in an error message, cut short.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn bad(what: &str, v: &Value) -> String {
    format!("expected {what}, found {}", brief(v))
}

impl Exact for f64 {
    fn store(&self) -> Value {
        let text = format!("{self:?}");
        if text.parse::<f64>().map(f64::to_bits) == Ok(self.to_bits()) {
            Value::String(text)
        } else {
            Value::String(format!("0x{:016x}", self.to_bits()))
        }
    }

    fn load(v: &Value) -> Result<Self, String> {
        let s = v.as_str().ok_or_else(|| bad("a number as text", v))?;
        let x = match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok().map(f64::from_bits),
            None => s.parse::<f64>().ok(),
        };
        x.ok_or_else(|| bad("a number as text", v))
    }
}

impl Exact for u64 {
    fn store(&self) -> Value {
        Value::from(*self)
    }

    fn load(v: &Value) -> Result<Self, String> {
        v.as_u64().ok_or_else(|| bad("a whole number", v))
    }
}

impl Exact for u32 {
    fn store(&self) -> Value {
        Value::from(*self)
    }

    fn load(v: &Value) -> Result<Self, String> {
        u32::try_from(u64::load(v)?).map_err(|_| bad("a 32-bit whole number", v))
    }
}

impl Exact for usize {
    fn store(&self) -> Value {
        Value::from(*self as u64)
    }

    fn load(v: &Value) -> Result<Self, String> {
        usize::try_from(u64::load(v)?).map_err(|_| bad("a size", v))
    }
}

impl Exact for bool {
    fn store(&self) -> Value {
        Value::Bool(*self)
    }

    fn load(v: &Value) -> Result<Self, String> {
        v.as_bool().ok_or_else(|| bad("true or false", v))
    }
}

impl Exact for NodeAddr {
    fn store(&self) -> Value {
        Value::String(self.to_string())
    }

    fn load(v: &Value) -> Result<Self, String> {
        let s = v.as_str().ok_or_else(|| bad("an address IP:PORT", v))?;
        s.parse().map_err(|e| format!("{e}"))
    }
}

impl<T: Exact> Exact for Vec<T> {
    fn store(&self) -> Value {
        Value::Array(self.iter().map(T::store).collect())
    }

    fn load(v: &Value) -> Result<Self, String> {
        let items = v.as_array().ok_or_else(|| bad("a list", v))?;
        items.iter().map(T::load).collect()
    }
}

impl<T: Exact, const N: usize> Exact for [T; N] {
    fn store(&self) -> Value {
        Value::Array(self.iter().map(T::store).collect())
    }

    fn load(v: &Value) -> Result<Self, String> {
        let items: Vec<T> = Vec::load(v)?;
        items
            .try_into()
            .map_err(|_| bad(&format!("a list of {N}"), v))
    }
}

impl<T: Exact> Exact for Option<T> {
    fn store(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::store)
    }

    fn load(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::load(v).map(Some),
        }
    }
}

/// A map as a list of `[key, value]` pairs, in key order (JSON keys are only text).
impl<K: Exact + Ord, V: Exact> Exact for BTreeMap<K, V> {
    fn store(&self) -> Value {
        Value::Array(
            self.iter()
                .map(|(k, v)| Value::Array(vec![k.store(), v.store()]))
                .collect(),
        )
    }

    fn load(v: &Value) -> Result<Self, String> {
        let pairs: Vec<(K, V)> = Vec::load(v)?;
        Ok(pairs.into_iter().collect())
    }
}

/// Implements [`Exact`] for a tuple, as a list.
macro_rules! exact_tuple {
    ($n:literal; $($t:ident $i:tt),+) => {
        impl<$($t: Exact),+> Exact for ($($t,)+) {
            fn store(&self) -> Value {
                Value::Array(vec![$(self.$i.store()),+])
            }

            fn load(v: &Value) -> Result<Self, String> {
                match v.as_array().map(Vec::as_slice) {
                    Some(items) if items.len() == $n => Ok(($($t::load(&items[$i])?,)+)),
                    _ => Err(bad(concat!("a list of ", $n), v)),
                }
            }
        }
    };
}
exact_tuple!(2; A 0, B 1);
exact_tuple!(5; A 0, B 1, C 2, D 3, E 4);

#[cfg(test)]
mod tests {
    use super::*;

    fn again<T: Exact>(x: &T) -> T {
        let text = x.store().to_string();
        T::load(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    #[test]
    fn every_f64_comes_back_with_its_bits() {
        let values = [
            0.0,
            -0.0,
            0.1,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 3.0,
            f64::MAX,
            1e300,
            -2.5e-300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff8_0000_0000_0001),
        ];
        for x in values {
            assert_eq!(
                again(&x).to_bits(),
                x.to_bits(),
                "{x:?} stored as {}",
                x.store()
            );
        }
        assert_eq!(0.1.store(), Value::String("0.1".into()));
        assert_eq!(f64::NAN.store(), Value::String("NaN".into()));
    }

    #[test]
    fn containers_and_addresses_come_back_equal() {
        let addr: NodeAddr = "127.0.0.1:5004".parse().unwrap();
        let v = vec![(addr, true, 1.5, f64::NAN, 2.0)];
        let back = again(&v);
        assert_eq!(back[0].0, addr);
        assert_eq!(back[0].3.to_bits(), f64::NAN.to_bits());
        let m: BTreeMap<u32, u64> = [(1, 10), (7, 70)].into();
        assert_eq!(again(&m), m);
        assert_eq!(again(&Some([1.0, 2.0, 3.0])), Some([1.0, 2.0, 3.0]));
        assert_eq!(again(&None::<u64>), None);
        assert!(u32::load(&Value::from(u64::MAX)).is_err());
        assert!(
            f64::load(&Value::from(1.5)).is_err(),
            "numbers are stored as text"
        );
    }
}
