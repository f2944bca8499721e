//! Adding a field to a JSON answer the emulator built itself.

use serde_json::{Map, Value};

/// `value[key] = field`, without `IndexMut`'s panic: the emulator only
/// passes objects it built (`json!({…})` or a renderer's output), or
/// `null`, which becomes an object as with `IndexMut`. Anything else is
/// left unchanged.
pub(crate) fn set(value: &mut Value, key: &str, field: Value) {
    if value.is_null() {
        *value = Value::Object(Map::new());
    }
    if let Some(fields) = value.as_object_mut() {
        fields.insert(key.to_owned(), field);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sets_a_field_of_an_object_or_null_and_leaves_anything_else() {
        let mut object = json!({"a": 1});
        set(&mut object, "b", json!(2));
        assert_eq!(object, json!({"a": 1, "b": 2}));
        let mut null = Value::Null;
        set(&mut null, "a", json!(1));
        assert_eq!(null, json!({"a": 1}));
        let mut list = json!([1]);
        set(&mut list, "a", json!(1));
        assert_eq!(list, json!([1]));
    }
}
