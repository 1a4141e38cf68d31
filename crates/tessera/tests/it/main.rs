//! Black-box tests: a real Tessera on port 0 with SQLite and ffmpeg, real
//! receivers and file servers on loopback. One binary keeps link time down.

mod api;
mod browser;
mod contracts;
mod crash;
mod dashboard;
mod delivery;
mod faults;
mod lifecycle;
mod multinode;
mod process;
mod runs;
mod s3;
mod schedules;
mod support;
mod uploads;
mod webdriver;
mod youtube;
