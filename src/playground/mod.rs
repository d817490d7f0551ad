//! An optimizer playground in the browser, computed by the library's own optimizers:
//! `wgoptim playground [--port P] [--device gpu|cpu]` serves one page (every asset embedded)
//! on 127.0.0.1 with three tabs (paths on loss surfaces, schedules and the LR finder, classifiers
//! trained side by side with a learning-rate sweep) and the JSON API behind it ([`api`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use wgoptim::CpuContext;
//! use wgoptim::playground::Playground;
//!
//! let server = Playground::bind(8000, Arc::new(CpuContext::new()))?;
//! println!("{}", server.url());
//! server.run(); // serves until the process ends
//! # Ok::<(), wgoptim::Error>(())
//! ```

pub mod api;
mod catalog;
mod jobs;
mod server;

pub use server::{MAX_BODY, Playground};
