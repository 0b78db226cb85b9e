//! Arrow values to JSON values, one cell at a time, so that a Parquet row becomes the same
//! record as the JSON line `datasets` writes for it.

use arrow_array::cast::AsArray;
use arrow_array::types::ArrowDictionaryKeyType;
use arrow_array::types::*;
use arrow_array::{Array, ArrowPrimitiveType, OffsetSizeTrait, PrimitiveArray};
use arrow_schema::{DataType, TimeUnit};
use serde_json::{Map, Number, Value};

/// Checks that every value of type `data_type` has a JSON form; on failure returns the
/// offending (possibly nested) type as Arrow prints it.
pub(crate) fn check_type(data_type: &DataType) -> Result<(), String> {
    use DataType::*;
    match data_type {
        Null
        | Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Utf8
        | LargeUtf8
        | Utf8View
        | Date32
        | Date64
        | Timestamp(_, _)
        | Decimal32(_, _)
        | Decimal64(_, _)
        | Decimal128(_, _)
        | Decimal256(_, _) => Ok(()),
        List(field) | LargeList(field) | FixedSizeList(field, _) => check_type(field.data_type()),
        Struct(fields) => fields.iter().try_for_each(|f| check_type(f.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            Struct(kv) if kv.len() == 2 => match kv[0].data_type() {
                Utf8 | LargeUtf8 | Utf8View => check_type(kv[1].data_type()),
                _ => Err(data_type.to_string()),
            },
            _ => Err(data_type.to_string()),
        },
        Dictionary(key, value) => match key.as_ref() {
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => check_type(value),
            _ => Err(data_type.to_string()),
        },
        _ => Err(data_type.to_string()),
    }
}

fn unsupported(array: &dyn Array) -> String {
    array.data_type().to_string()
}

fn float(x: f64) -> Value {
    // NaN and infinities have no JSON form; pandas and `datasets` write them as null too.
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A float32 as the shortest decimal that reads back as it (0.1f32 is 0.1, not
/// 0.10000000149011612), which is what Python prints for it.
fn float32(x: f32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    float(x.to_string().parse::<f64>().unwrap_or(x as f64))
}

fn primitive<T: ArrowPrimitiveType>(array: &dyn Array) -> Result<&PrimitiveArray<T>, String> {
    array.as_primitive_opt::<T>().ok_or_else(|| unsupported(array))
}

/// The JSON form of `array[row]`.
pub(crate) fn to_json(array: &dyn Array, row: usize) -> Result<Value, String> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    use DataType::*;
    Ok(match array.data_type() {
        Null => Value::Null,
        Boolean => Value::Bool(array.as_boolean_opt().ok_or_else(|| unsupported(array))?.value(row)),
        Int8 => Value::from(primitive::<Int8Type>(array)?.value(row)),
        Int16 => Value::from(primitive::<Int16Type>(array)?.value(row)),
        Int32 => Value::from(primitive::<Int32Type>(array)?.value(row)),
        Int64 => Value::from(primitive::<Int64Type>(array)?.value(row)),
        UInt8 => Value::from(primitive::<UInt8Type>(array)?.value(row)),
        UInt16 => Value::from(primitive::<UInt16Type>(array)?.value(row)),
        UInt32 => Value::from(primitive::<UInt32Type>(array)?.value(row)),
        UInt64 => Value::from(primitive::<UInt64Type>(array)?.value(row)),
        Float16 => float32(primitive::<Float16Type>(array)?.value(row).to_f32()),
        Float32 => float32(primitive::<Float32Type>(array)?.value(row)),
        Float64 => float(primitive::<Float64Type>(array)?.value(row)),
        Utf8 => Value::String(
            array.as_string_opt::<i32>().ok_or_else(|| unsupported(array))?.value(row).to_owned(),
        ),
        LargeUtf8 => Value::String(
            array.as_string_opt::<i64>().ok_or_else(|| unsupported(array))?.value(row).to_owned(),
        ),
        Utf8View => {
            Value::String(array.as_string_view_opt().ok_or_else(|| unsupported(array))?.value(row).to_owned())
        }
        Decimal32(_, _) => Value::String(primitive::<Decimal32Type>(array)?.value_as_string(row)),
        Decimal64(_, _) => Value::String(primitive::<Decimal64Type>(array)?.value_as_string(row)),
        Decimal128(_, _) => Value::String(primitive::<Decimal128Type>(array)?.value_as_string(row)),
        Decimal256(_, _) => Value::String(primitive::<Decimal256Type>(array)?.value_as_string(row)),
        Date32 => date(primitive::<Date32Type>(array)?.value_as_date(row)),
        Date64 => date(primitive::<Date64Type>(array)?.value_as_date(row)),
        Timestamp(unit, tz) => {
            let datetime = match unit {
                TimeUnit::Second => primitive::<TimestampSecondType>(array)?.value_as_datetime(row),
                TimeUnit::Millisecond => primitive::<TimestampMillisecondType>(array)?.value_as_datetime(row),
                TimeUnit::Microsecond => primitive::<TimestampMicrosecondType>(array)?.value_as_datetime(row),
                TimeUnit::Nanosecond => primitive::<TimestampNanosecondType>(array)?.value_as_datetime(row),
            };
            match datetime {
                // A zoned timestamp is stored as the UTC instant.
                Some(dt) => Value::String(format!(
                    "{}{}",
                    dt.format("%Y-%m-%dT%H:%M:%S%.f"),
                    if tz.is_some() { "Z" } else { "" }
                )),
                None => Value::Null,
            }
        }
        List(_) => list::<i32>(array, row)?,
        LargeList(_) => list::<i64>(array, row)?,
        FixedSizeList(_, _) => {
            let list = array.as_fixed_size_list_opt().ok_or_else(|| unsupported(array))?;
            let start = list.value_offset_at(row);
            let values = list.values().as_ref();
            let items = (start..start + list.value_length() as usize)
                .map(|i| to_json(values, i))
                .collect::<Result<Vec<_>, _>>()?;
            Value::Array(items)
        }
        Struct(_) => {
            let structure = array.as_struct_opt().ok_or_else(|| unsupported(array))?;
            let mut object = serde_json::Map::new();
            for (field, column) in structure.fields().iter().zip(structure.columns()) {
                object.insert(field.name().clone(), to_json(column.as_ref(), row)?);
            }
            Value::Object(object)
        }
        DataType::Map(_, _) => {
            let map = array.as_map_opt().ok_or_else(|| unsupported(array))?;
            let offsets = map.value_offsets();
            let (keys, values) = (map.keys().as_ref(), map.values().as_ref());
            let mut object = serde_json::Map::new();
            for i in offsets[row] as usize..offsets[row + 1] as usize {
                let key = match to_json(keys, i)? {
                    Value::String(s) => s,
                    _ => return Err(unsupported(array)),
                };
                object.insert(key, to_json(values, i)?);
            }
            Value::Object(object)
        }
        Dictionary(key, _) => match key.as_ref() {
            Int8 => dictionary::<Int8Type>(array, row)?,
            Int16 => dictionary::<Int16Type>(array, row)?,
            Int32 => dictionary::<Int32Type>(array, row)?,
            Int64 => dictionary::<Int64Type>(array, row)?,
            UInt8 => dictionary::<UInt8Type>(array, row)?,
            UInt16 => dictionary::<UInt16Type>(array, row)?,
            UInt32 => dictionary::<UInt32Type>(array, row)?,
            UInt64 => dictionary::<UInt64Type>(array, row)?,
            _ => return Err(unsupported(array)),
        },
        _ => return Err(unsupported(array)),
    })
}

fn date(date: Option<impl std::fmt::Display>) -> Value {
    date.map_or(Value::Null, |d| Value::String(d.to_string()))
}

fn list<O: OffsetSizeTrait>(array: &dyn Array, row: usize) -> Result<Value, String> {
    let list = array.as_list_opt::<O>().ok_or_else(|| unsupported(array))?;
    let offsets = list.value_offsets();
    let values = list.values().as_ref();
    let items = (offsets[row].as_usize()..offsets[row + 1].as_usize())
        .map(|i| to_json(values, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(items))
}

fn dictionary<K: ArrowDictionaryKeyType>(array: &dyn Array, row: usize) -> Result<Value, String> {
    let dict = array.as_dictionary_opt::<K>().ok_or_else(|| unsupported(array))?;
    match dict.key(row) {
        Some(i) if i < dict.values().len() => to_json(dict.values().as_ref(), i),
        Some(_) => Err(format!("{} (a key out of range)", array.data_type())),
        None => Ok(Value::Null),
    }
}

/// The size in bytes of a value written as compact JSON, counting strings unescaped: what
/// the row-size limit of a Parquet row is measured in.
pub(crate) fn json_size(value: &Value) -> u64 {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() as u64 + 2,
        Value::Array(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<u64>(),
        Value::Object(map) => object_size(map),
    }
}

/// [`json_size`] of an object.
pub(crate) fn object_size(map: &Map<String, Value>) -> u64 {
    2 + map.iter().map(|(k, v)| k.len() as u64 + 4 + json_size(v)).sum::<u64>()
}
