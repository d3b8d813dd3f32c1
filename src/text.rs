//! Text for people: plurals and numbers in messages, summaries and the command line.

/// `word` for a count of one, `words` for any other: "1 epoch", "3 epochs".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// A value for people: the shortest decimal that reads back as the same f32 (`0.05`, not
/// `0.05000000074505806`), in exponent form below 1e-3 (`1e-7`, not `0.0000001`).
pub fn number(v: f32) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Rewrites every number in `json` that is an f32 widened to f64 (as `serde_json::json!(v)`
/// makes of an f32 `v`: `0.05000000074505806`) as the shortest decimal of that f32 (`0.05`),
/// which reads back as the same f32: what Keras JSON written for people should hold.
pub fn shortest_f32s(json: &mut serde_json::Value) {
    match json {
        serde_json::Value::Number(n) if n.is_f64() => {
            let v = n.as_f64().unwrap_or_default();
            let f = v as f32;
            if f64::from(f) == v && f.is_finite() {
                if let Some(short) = format!("{f}").parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                    *n = short;
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(shortest_f32s),
        serde_json::Value::Object(o) => o.values_mut().for_each(shortest_f32s),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_numbers_read_as_people_write_them() {
        assert_eq!(format!("1 {}, 0 {}, 3 {}", plural(1, "epoch"), plural(0, "epoch"), plural(3, "epoch")), "1 epoch, 0 epochs, 3 epochs");
        assert_eq!(number(0.05), "0.05");
        assert_eq!(number(1e-7), "1e-7");
        assert_eq!(number(0.001), "0.001");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-2.5e-4), "-2.5e-4");
    }

    #[test]
    fn widened_f32s_are_written_as_their_shortest_decimal() {
        let mut v = serde_json::json!({"t": 0.05f32, "xs": [0.1f32, 1e-7f32, 3], "exact": 0.1f64, "name": "a"});
        shortest_f32s(&mut v);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"exact":0.1,"name":"a","t":0.05,"xs":[0.1,1e-7,3]}"#);
        // The same f32 bits read back.
        assert_eq!(v["t"].as_f64().unwrap() as f32, 0.05f32);
    }
}
