//! The cores of the examples (`examples/`), kept in the library so that tests can run them at
//! small sizes: optimizer paths on loss surfaces, classifiers trained with each optimizer on a
//! synthetic and a real data set, and the drawing of both. Every update is the library's step on
//! the [`Engine`] given (a [`crate::GpuContext`] or a [`crate::CpuContext`]); forward and backward
//! passes run on the CPU (ndarray).

pub mod classify;
pub mod data;
pub mod engine;
pub mod schedules;
pub mod surfaces;

pub use engine::Engine;
