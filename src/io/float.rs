//! Floats in JSON records that read back as they were written, non-finite ones included.
//!
//! JSON has no number for NaN or ±inf, and serde_json writes them as `null`, which does not read back as
//! a number: a record holding one could be written but not resumed from. [`JsonF64`] writes finite
//! values as numbers (the same bytes as a plain `f64`) and the others as the strings `"NaN"`, `"inf"`
//! and `"-inf"`; it reads those, numbers, and `null` (as NaN, for records written before).

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// An `f64` whose JSON form reads back to the same value, NaN and ±inf included (see the module).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct JsonF64(pub f64);

impl Serialize for JsonF64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }
}

impl<'de> Deserialize<'de> for JsonF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = JsonF64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, \"NaN\", \"inf\", \"-inf\" or null")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonF64, E> {
                Ok(JsonF64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonF64, E> {
                Ok(JsonF64(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonF64, E> {
                Ok(JsonF64(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonF64, E> {
                match v {
                    "NaN" => Ok(JsonF64(f64::NAN)),
                    "inf" => Ok(JsonF64(f64::INFINITY)),
                    "-inf" => Ok(JsonF64(f64::NEG_INFINITY)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<JsonF64, E> {
                Ok(JsonF64(f64::NAN))
            }
            fn visit_none<E: de::Error>(self) -> Result<JsonF64, E> {
                Ok(JsonF64(f64::NAN))
            }
        }
        d.deserialize_any(Visitor)
    }
}
