use super::*;

fn sample() -> PeerMetadata {
    PeerMetadata {
        name: "temperature-api-7d9f-abcde".into(),
        namespace: "default".into(),
        workload_name: "temperature-api".into(),
        cluster_id: "Kubernetes".into(),
        service_account: "temperature-api".into(),
        owner: "kubernetes://apis/apps/v1/namespaces/default/deployments/temperature-api".into(),
        app_containers: "api".into(),
        instance_ips: "10.1.2.3".into(),
        labels: BTreeMap::from([
            ("app".to_string(), "temperature-api".to_string()),
            ("version".to_string(), "v1".to_string()),
        ]),
    }
}

/// Protobuf length-delimited field.
fn ld(field: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2];
    let mut len = bytes.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

/// A `Struct` map entry `key: Value{string_value}`, encoded by hand (not with prost),
/// so the test checks the wire format rather than a round trip.
fn string_entry(key: &str, value: &str) -> Vec<u8> {
    let value_msg = ld(3, value.as_bytes()); // Value.string_value = 3
    let entry = [ld(1, key.as_bytes()), ld(2, &value_msg)].concat();
    ld(1, &entry) // Struct.fields = 1
}

#[test]
fn round_trips_through_the_header() {
    let m = sample();
    let header = m.to_header_value();
    assert_eq!(
        PeerMetadata::from_header_value(header.as_bytes()),
        Ok(m.clone())
    );
    // Unpadded base64 is accepted too.
    let unpadded = header.trim_end_matches('=');
    assert_eq!(PeerMetadata::from_header_value(unpadded.as_bytes()), Ok(m));
}

#[test]
fn decodes_hand_encoded_wire_format() {
    let labels = [ld(1, &[ld(1, b"app"), ld(2, &ld(3, b"ratings"))].concat())].concat();
    let labels_value = ld(5, &labels); // Value.struct_value = 5
    let bytes = [
        string_entry("NAME", "ratings-v1-abc"),
        string_entry("NAMESPACE", "bookinfo"),
        string_entry("WORKLOAD_NAME", "ratings-v1"),
        string_entry("ISTIO_VERSION", "1.24.0"),
        ld(1, &[ld(1, b"LABELS"), ld(2, &labels_value)].concat()),
    ]
    .concat();
    let header = BASE64.encode(&bytes);
    let m = PeerMetadata::from_header_value(header.as_bytes()).unwrap();
    assert_eq!(m.name, "ratings-v1-abc");
    assert_eq!(m.namespace, "bookinfo");
    assert_eq!(m.workload(), "ratings-v1");
    assert_eq!(m.labels.get("app").map(String::as_str), Some("ratings"));
    let peer = m.to_peer_info(None);
    assert_eq!(peer.canonical_service, "ratings");
    assert_eq!(peer.canonical_revision, "latest");
    assert_eq!(peer.cluster, "Kubernetes");
    assert_eq!(peer.principal, "");
}

#[test]
fn workload_falls_back_to_owner_then_pod() {
    let mut m = sample();
    m.workload_name.clear();
    assert_eq!(m.workload(), "temperature-api");
    m.owner.clear();
    assert_eq!(m.workload(), "temperature-api-7d9f-abcde");
}

#[test]
fn rejects_malformed_values_with_errors() {
    assert_eq!(
        PeerMetadata::from_header_value(b"!!not base64!!"),
        Err(PeerMetadataError::Base64)
    );
    let long = vec![b'A'; MAX_PEER_METADATA_LEN + 1];
    assert!(matches!(
        PeerMetadata::from_header_value(&long),
        Err(PeerMetadataError::TooLong(_))
    ));
    // NAME holding a number instead of a string.
    let number = ld(
        1,
        &[ld(1, b"NAME"), ld(2, &[0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f])].concat(),
    );
    assert_eq!(
        PeerMetadata::from_protobuf(&number),
        Err(PeerMetadataError::BadField("NAME".into()))
    );
    assert!(matches!(
        PeerMetadata::from_protobuf(&[0x0a, 0xff]),
        Err(PeerMetadataError::Protobuf(_))
    ));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut value = ld(3, b"x");
    for _ in 0..2000 {
        let entry = [ld(1, b"k"), ld(2, &value)].concat();
        value = ld(5, &ld(1, &entry));
    }
    let bytes = ld(1, &[ld(1, b"LABELS"), ld(2, &value)].concat());
    assert!(PeerMetadata::from_protobuf(&bytes).is_err());
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let valid = sample().to_protobuf();
    let mut accepted = 0;
    for i in 0..20_000 {
        let bytes: Vec<u8> = match i % 3 {
            0 => (0..rng.usize(0..256)).map(|_| rng.u8(..)).collect(),
            1 => {
                let mut b = valid.clone();
                for _ in 0..rng.usize(1..4) {
                    let at = rng.usize(..b.len());
                    b[at] = rng.u8(..);
                }
                b.truncate(rng.usize(0..=b.len()));
                b
            }
            _ => valid[..rng.usize(0..=valid.len())].to_vec(),
        };
        if PeerMetadata::from_protobuf(&bytes).is_ok() {
            accepted += 1;
        }
        let _ = PeerMetadata::from_header_value(BASE64.encode(&bytes).as_bytes());
        let _ = PeerMetadata::from_header_value(&bytes);
        let _ = PeerNodeId::parse(&String::from_utf8_lossy(&bytes));
    }
    // Some truncations land on field boundaries and decode; most garbage does not.
    assert!(accepted > 0 && accepted < 20_000, "accepted {accepted}");
}

#[test]
fn node_id_round_trips() {
    let id = PeerNodeId::sidecar("10.1.2.3", "temperature-api-7d9f-abcde", "default");
    let text = id.to_string();
    assert_eq!(
        text,
        "sidecar~10.1.2.3~temperature-api-7d9f-abcde.default~default.svc.cluster.local"
    );
    assert_eq!(PeerNodeId::parse(&text), Ok(id));
    for bad in [
        "",
        "sidecar",
        "a~b~c",
        "a~b~nodot~d",
        "a~b~.ns~d",
        "a~b~c.d~e~f",
    ] {
        assert!(PeerNodeId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn headers_are_inserted_read_and_stripped() {
    let mut headers = HeaderMap::new();
    let m = sample();
    m.insert_headers(
        &PeerNodeId::sidecar("10.1.2.3", "p", "default"),
        &mut headers,
    );
    assert_eq!(PeerMetadata::from_headers(&headers), Some(Ok(m)));
    strip_peer_headers(&mut headers);
    assert!(headers.is_empty());
    assert_eq!(PeerMetadata::from_headers(&headers), None);
}
