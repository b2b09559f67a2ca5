//! A `sql-dialect` plugin that misbehaves on purpose, so the host's sandbox can be tested.
//!
//! `validate` picks its misbehaviour from the SQL text:
//! - `loop`: spins forever (the epoch deadline must stop it);
//! - `alloc`: allocates until the memory cap is hit;
//! - `trap`: panics (an `unreachable` trap);
//! - `garbage`: returns an "accepted" statement that is empty and names no kind it could have;
//! - `stack`: recurses until the wasm stack overflows;
//! - `env`, `fs`, `net`: reports whether it can see environment variables, the filesystem or the
//!   network (the answer must always be no);
//! - anything else: accepts the SQL unchanged, so good calls can run beside bad ones.

wit_bindgen::generate!({ world: "sql-dialect", path: "../../../wit" });

use exports::quarry::plugin::dialect::{Guest, Policy, StatementKind, Validated, Violation};
use quarry::plugin::types::PluginInfo;

struct Misbehaving;

impl Guest for Misbehaving {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "misbehaving".into(),
            version: "0.1.0".into(),
            description: "misbehaves on purpose".into(),
        }
    }

    fn prompt_guidance() -> String {
        String::new()
    }

    fn validate(sql: String, _policy: Policy) -> Result<Validated, Vec<Violation>> {
        match sql.trim() {
            "loop" => spin(),
            "alloc" => hog_memory(),
            "trap" => panic!("deliberate trap"),
            "stack" => Ok(accept(recurse(1).to_string())),
            "env" => Ok(accept(format!("env-vars:{}", std::env::vars().count()))),
            "fs" => Ok(accept(match std::fs::read_dir("/") {
                Ok(_) => "fs-open".to_string(),
                Err(_) => "fs-denied".to_string(),
            })),
            "net" => Ok(accept(match std::net::TcpStream::connect("127.0.0.1:5432") {
                Ok(_) => "net-open".to_string(),
                Err(_) => "net-denied".to_string(),
            })),
            "garbage" => Ok(Validated { sql: String::new(), kind: StatementKind::Explain, tables: vec!["\u{0}".into()], warnings: vec![] }),
            _ => Ok(accept(sql)),
        }
    }
}

fn accept(sql: String) -> Validated {
    Validated { sql, kind: StatementKind::Select, tables: vec![], warnings: vec![] }
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hog_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 64]);
    if depth == u64::MAX { return pad[0]; }
    recurse(depth + 1) + pad[1]
}

export!(Misbehaving);
