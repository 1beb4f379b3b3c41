//! The server's integration tests, in one binary: the shared helpers in
//! `common` compile once rather than once per file, a real cost on 2 cores.
//! Each module is one area, driven through the real app or the real binary.

mod archive;
mod auth_http;
mod binary;
mod common;
mod container;
mod conversations;
mod disk_full;
mod files;
mod hardening;
mod lifecycle;
mod metrics;
mod moderation;
mod multinode;
mod openapi;
mod outage;
mod push;
mod realtime;
mod rich;
mod rooms_http;
mod stomp_session;
mod stompjs;
mod transports;
mod uploads;
mod web;
