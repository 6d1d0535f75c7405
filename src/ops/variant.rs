//! Kernel variants: each op family lists the kernels it can run a problem with as one enum, says
//! which it prefers on each device class, and says why a variant cannot take a problem. [`choose`]
//! is the only ladder: a forced variant (tests, benchmarks) must fit, otherwise the first fitting
//! variant in the device class's order runs. Entry-point names come from the enum's match arms, so
//! searching for an entry point's name finds the Rust that runs it.

use crate::gpu::device::DeviceClass;

/// The kernel variants of one op family.
pub trait Variant: Copy + std::fmt::Debug + PartialEq + 'static {
    /// What the choice depends on: sizes, strides, alignment, device facts (computed by the op).
    type Problem: ?Sized;
    /// The variants a device class may choose, fastest first. Variants left out run only when
    /// forced.
    fn preference(class: DeviceClass) -> &'static [Self];
    /// Why this variant cannot run `problem`, or `None` when it can.
    fn unfit(self, problem: &Self::Problem) -> Option<String>;
}

/// `forced` if it fits, else the first variant in `class`'s order that fits. The error says why
/// the forced variant, or every variant of the order, does not fit.
pub fn choose<V: Variant>(class: DeviceClass, forced: Option<V>, problem: &V::Problem) -> Result<V, String> {
    if let Some(v) = forced {
        return match v.unfit(problem) {
            None => Ok(v),
            Some(why) => Err(format!("variant {v:?} {why}")),
        };
    }
    let order = V::preference(class);
    let mut why = Vec::new();
    for &v in order {
        match v.unfit(problem) {
            None => return Ok(v),
            Some(w) => why.push(format!("{v:?} {w}")),
        }
    }
    Err(format!("no kernel variant fits on a {class:?} device: {}", why.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum V {
        Fast,
        Slow,
        Odd,
    }

    impl Variant for V {
        type Problem = usize;
        fn preference(class: DeviceClass) -> &'static [V] {
            match class {
                DeviceClass::Software => &[V::Fast, V::Slow],
                DeviceClass::Hardware => &[V::Slow],
            }
        }
        fn unfit(self, n: &usize) -> Option<String> {
            match self {
                V::Fast if n % 4 != 0 => Some(format!("needs a multiple of 4, got {n}")),
                V::Odd if n % 2 == 0 => Some("needs an odd size".into()),
                _ => None,
            }
        }
    }

    #[test]
    fn first_fitting_in_order_or_the_forced_one() {
        assert_eq!(choose::<V>(DeviceClass::Software, None, &8), Ok(V::Fast));
        assert_eq!(choose::<V>(DeviceClass::Software, None, &7), Ok(V::Slow));
        assert_eq!(choose::<V>(DeviceClass::Hardware, None, &8), Ok(V::Slow));
        assert_eq!(choose(DeviceClass::Hardware, Some(V::Odd), &7), Ok(V::Odd));
        assert_eq!(
            choose(DeviceClass::Software, Some(V::Fast), &6).unwrap_err(),
            "variant Fast needs a multiple of 4, got 6"
        );
    }
}
