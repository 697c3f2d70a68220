//! The v2 reports, end to end: access, errors, and every figure equal to plain
//! SQL over `tokens` and `users` (`reference`), on randomized data in random
//! zones (`data`).

mod access;
mod concurrency;
mod contract;
mod data;
mod errors;
mod formats;
mod members;
mod reference;
mod slots;
mod usage;
