//! OTLP sink tests (feature `otlp`): see the test functions below.
