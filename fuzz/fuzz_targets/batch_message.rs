//! Fuzz target `batch_message`: any bytes are decoded as a [`BatchMessage`], as a worker
//! decodes what it takes off RabbitMQ. Decoding must never panic, and a message that decodes
//! must encode and decode back to itself (what a coordinator publishes, a worker reads).

#![no_main]

use dirsync_proto::BatchMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = BatchMessage::decode(data) else {
        return;
    };
    let encoded = message.encode();
    let decoded = BatchMessage::decode(&encoded).expect("an encoded message decodes");
    assert_eq!(decoded, message, "encode/decode round trip");
});
