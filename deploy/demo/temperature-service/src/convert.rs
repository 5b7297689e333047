//! Temperature arithmetic: unit names, absolute-zero checks and rounding, free of gRPC.

use std::{fmt, str::FromStr};

/// A temperature scale the service converts between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Celsius,
    Fahrenheit,
    Kelvin,
}

impl Unit {
    /// The name used in responses.
    pub fn canonical_name(self) -> &'static str {
        match self {
            Unit::Celsius => "Celsius",
            Unit::Fahrenheit => "Fahrenheit",
            Unit::Kelvin => "Kelvin",
        }
    }

    /// Absolute zero expressed in this unit.
    pub fn absolute_zero(self) -> f64 {
        match self {
            Unit::Celsius => -273.15,
            Unit::Fahrenheit => -459.67,
            Unit::Kelvin => 0.0,
        }
    }

    /// `value` in this unit, expressed in Kelvin.
    fn kelvin_of(self, value: f64) -> f64 {
        match self {
            Unit::Celsius => value + 273.15,
            Unit::Fahrenheit => (value + 459.67) * 5.0 / 9.0,
            Unit::Kelvin => value,
        }
    }

    /// `kelvin` expressed in this unit.
    fn value_of_kelvin(self, kelvin: f64) -> f64 {
        match self {
            Unit::Celsius => kelvin - 273.15,
            Unit::Fahrenheit => kelvin * 9.0 / 5.0 - 459.67,
            Unit::Kelvin => kelvin,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical_name())
    }
}

/// A unit name that is none of Celsius, Fahrenheit or Kelvin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown unit '{0}'; expected Celsius, Fahrenheit or Kelvin")]
pub struct UnknownUnit(pub String);

impl FromStr for Unit {
    type Err = UnknownUnit;

    /// Case-insensitive; surrounding whitespace is ignored.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "celsius" => Ok(Unit::Celsius),
            "fahrenheit" => Ok(Unit::Fahrenheit),
            "kelvin" => Ok(Unit::Kelvin),
            _ => Err(UnknownUnit(name.to_string())),
        }
    }
}

/// Why a conversion was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConversionError {
    #[error("unknown unit '{name}' in '{field}'; expected Celsius, Fahrenheit or Kelvin")]
    UnknownUnit { field: &'static str, name: String },
    #[error("temperature must be a finite number, got {0}")]
    NotFinite(f64),
    #[error("{value} {unit} is below absolute zero ({zero} {unit})")]
    BelowAbsoluteZero { value: f64, unit: Unit, zero: f64 },
}

/// Parses a unit name for the request field `field` (named in the error).
pub fn parse_unit(field: &'static str, name: &str) -> Result<Unit, ConversionError> {
    name.parse()
        .map_err(|UnknownUnit(name)| ConversionError::UnknownUnit { field, name })
}

/// Converts `value` from `from` to `to`, rounded to two decimals.
pub fn convert(value: f64, from: Unit, to: Unit) -> Result<f64, ConversionError> {
    if !value.is_finite() {
        return Err(ConversionError::NotFinite(value));
    }
    let zero = from.absolute_zero();
    if value < zero {
        return Err(ConversionError::BelowAbsoluteZero {
            value,
            unit: from,
            zero,
        });
    }
    Ok(round_to_hundredths(
        to.value_of_kelvin(from.kelvin_of(value)),
    ))
}

/// Rounds to two decimals so float noise (423.15000000000003) never reaches a caller,
/// and folds -0.0 into 0.0 so JSON never shows "-0.0".
fn round_to_hundredths(value: f64) -> f64 {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded == 0.0 {
        0.0
    } else {
        rounded
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_are_case_insensitive() {
        assert_eq!("CELSIUS".parse::<Unit>().unwrap(), Unit::Celsius);
        assert_eq!(" fahrenheit ".parse::<Unit>().unwrap(), Unit::Fahrenheit);
        assert_eq!("kElViN".parse::<Unit>().unwrap(), Unit::Kelvin);
        assert!("Rankine".parse::<Unit>().is_err());
    }

    #[test]
    fn absolute_zero_itself_converts() {
        assert_eq!(convert(-273.15, Unit::Celsius, Unit::Kelvin).unwrap(), 0.0);
        assert_eq!(
            convert(-459.67, Unit::Fahrenheit, Unit::Kelvin).unwrap(),
            0.0
        );
        assert_eq!(convert(0.0, Unit::Kelvin, Unit::Celsius).unwrap(), -273.15);
    }

    #[test]
    fn rounding_hides_float_noise() {
        assert_eq!(convert(150.0, Unit::Celsius, Unit::Kelvin).unwrap(), 423.15);
        assert_eq!(convert(0.1, Unit::Celsius, Unit::Celsius).unwrap(), 0.1);
        assert_eq!(convert(-0.001, Unit::Celsius, Unit::Celsius).unwrap(), 0.0);
        assert!(convert(-0.001, Unit::Celsius, Unit::Celsius)
            .unwrap()
            .is_sign_positive());
    }

    #[test]
    fn rejects_nan_and_infinity() {
        assert!(matches!(
            convert(f64::NAN, Unit::Celsius, Unit::Kelvin),
            Err(ConversionError::NotFinite(_))
        ));
        assert!(matches!(
            convert(f64::INFINITY, Unit::Kelvin, Unit::Celsius),
            Err(ConversionError::NotFinite(_))
        ));
    }
}
