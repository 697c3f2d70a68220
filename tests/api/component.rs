//! The built component imports only what a released Spin or containerd-shim-spin
//! serves, exports the HTTP handler they call, and starts small.

use wasmparser::{Parser, Payload};

use test_support::component_path;

fn imports_and_exports() -> (Vec<String>, Vec<String>) {
    let bytes = std::fs::read(component_path()).unwrap();
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    // `parse_all` also walks nested modules and components, between their section
    // and their `End`; only the outer component's imports and exports face the host.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.expect("a valid component") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    imports.push(import.unwrap().name.0.to_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.push(export.unwrap().name.0.to_owned());
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

#[test]
fn exports_the_wasi_http_0_2_0_incoming_handler() {
    let (_, exports) = imports_and_exports();
    assert!(
        exports.contains(&"wasi:http/incoming-handler@0.2.0".to_owned()),
        "{exports:?}"
    );
}

#[test]
fn imports_only_wasi_0_2_spin_postgres_4_and_spin_variables_and_key_value() {
    let (imports, _) = imports_and_exports();
    assert!(
        imports.contains(&"spin:postgres/postgres@4.0.0".to_owned()),
        "{imports:?}"
    );
    assert!(
        imports.contains(&"fermyon:spin/variables@2.0.0".to_owned()),
        "{imports:?}"
    );
    for import in &imports {
        let served = import == "spin:postgres/postgres@4.0.0"
            || import == "fermyon:spin/variables@2.0.0"
            || import == "fermyon:spin/key-value@2.0.0"
            || (import.starts_with("wasi:") && import.contains("@0.2."));
        assert!(served, "{import} is not served by Spin 3.4-4.0 or the shim");
    }
}

/// The initial size in bytes of each linear memory that the component's core
/// modules define.
fn initial_memories() -> Vec<u64> {
    let bytes = std::fs::read(component_path()).unwrap();
    let mut sizes = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        if let Payload::MemorySection(section) = payload.expect("a valid component") {
            for memory in section {
                sizes.push(memory.unwrap().initial * 65_536);
            }
        }
    }
    sizes
}

#[test]
fn each_instance_starts_with_under_a_mebibyte_of_memory() {
    // Spin sets up and resets an instance's whole memory on every request;
    // build.rs gives the stack 256 KiB instead of Rust's 1 MiB.
    let sizes = initial_memories();
    assert!(!sizes.is_empty(), "the component defines a memory");
    for size in sizes {
        assert!(size < 1 << 20, "a memory starts at {size} bytes");
    }
}
