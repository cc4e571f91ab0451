//! compass's integration tests: the real binary against real files and the local fakes.
//!
//! Run them through the README's test command, which starts the fakes first; a test that needs
//! one and cannot reach it fails, it never skips.

mod attacks;
mod bad_input;
mod browser;
mod chaos;
mod claude;
mod claude_client;
mod cli;
mod contract;
mod customers;
mod data_rights;
mod demo;
mod fake_http;
mod invoices;
mod llmock;
mod maildev;
mod method;
mod operator;
mod payments;
mod peers;
mod policies;
mod process;
mod review;
mod seed;
mod services;
mod stripe_client;
mod support;
