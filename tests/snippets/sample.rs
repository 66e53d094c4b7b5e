//! Builder pattern sample used by the snapshot tests.

use std::fmt;

/// A finished pizza.
#[derive(Debug, Clone, PartialEq)]
pub struct Pizza {
    size: u8,
    toppings: Vec<String>,
}

// The builder collects options before building.
#[derive(Default)]
pub struct PizzaBuilder {
    size: Option<u8>,
    toppings: Vec<String>,
}

impl PizzaBuilder {
    /// Starts an empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the size in inches.
    pub fn size(mut self, size: u8) -> Self {
        self.size = Some(size);
        self
    }

    /// Adds a topping.
    pub fn topping(mut self, t: &str) -> Self {
        self.toppings.push(t.to_string());
        self
    }

    /// Builds the pizza (12 inches unless told otherwise).
    pub fn build(self) -> Pizza {
        Pizza {
            size: self.size.unwrap_or(12),
            toppings: self.toppings,
        }
    }
}

impl fmt::Display for Pizza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\" pizza with {}", self.size, self.toppings.join(", "))
    }
}

macro_rules! pizza {
    ($($t:expr),*) => { PizzaBuilder::new()$(.topping($t))*.build() };
}

mod tests {
    #[test]
    fn builds() {
        let p = super::PizzaBuilder::new().size(10).build();
        assert_eq!(p.size, 10);
    }
}
