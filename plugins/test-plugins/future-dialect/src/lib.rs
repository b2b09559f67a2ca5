//! A dialect plugin that exports `quarry:plugin/dialect@0.2.0`, a version this host does not
//! support, so the host's refusal of incompatible plugins can be tested.

wit_bindgen::generate!({
    inline: "
        package quarry:plugin@0.2.0;
        interface dialect {
            validate: func(sql: string) -> bool;
        }
        world future-dialect {
            export dialect;
        }
    ",
});

struct Future;

impl exports::quarry::plugin::dialect::Guest for Future {
    fn validate(_sql: String) -> bool {
        true
    }
}

export!(Future);
