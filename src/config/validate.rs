//! The checks of single values while they are deserialized (ranges, absolute paths, the
//! identifier prefix), so that a bad value is reported at its own position in the file.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::path::PathBuf;

use super::{MAX_IDENTIFIER_PREFIX, MAX_LINE_LENGTH_MAX, MAX_STOP_TIMEOUT_SECS};

pub(super) fn identifier_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let prefix = String::deserialize(d)?;
    let ok = prefix.len() <= MAX_IDENTIFIER_PREFIX
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !ok {
        return Err(serde::de::Error::custom(format!(
            "`{prefix}`: expected at most {MAX_IDENTIFIER_PREFIX} letters, digits, `-`, `_`, \
             `.` or `:` (such as \"remote-\"), or \"\" for identifiers as sent"
        )));
    }
    Ok(prefix)
}

pub(super) fn in_range<'de, D, T>(d: D, min: T, max: T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + fmt::Display,
{
    let v = T::deserialize(d)?;
    if v < min || v > max {
        return Err(serde::de::Error::custom(format!(
            "{v} is out of range: expected {min} to {max}"
        )));
    }
    Ok(v)
}

pub(super) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    in_range(d, 1, 65535)
}

pub(super) fn stop_timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    in_range(d, 1, MAX_STOP_TIMEOUT_SECS)
}

pub(super) fn absolute_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let path = PathBuf::deserialize(d)?;
    if !path.is_absolute() {
        return Err(serde::de::Error::custom(format!(
            "`{}` is not an absolute path",
            path.display()
        )));
    }
    Ok(path)
}

pub(super) fn buffer_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 1, 1 << 20)
}

pub(super) fn backlog<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    in_range(d, 1, 65535)
}

pub(super) fn positive_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 1, 1 << 20)
}

pub(super) fn max_line_length<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 4, MAX_LINE_LENGTH_MAX)
}

pub(super) fn udp_receive_buffer<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 4096, 1 << 28)
}

pub(super) fn udp_hold_buffer<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 0, 1 << 30)
}

pub(super) fn udp_max_datagram<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    in_range(d, 64, 65_535)
}
