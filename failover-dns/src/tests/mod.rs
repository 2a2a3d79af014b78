//! Tests of the crate as a whole that need its private parts.

mod alloc;
