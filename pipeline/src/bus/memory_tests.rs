use super::*;
use crate::bus::partition_for;

fn msg(topic: Topic, key: &str, body: &str) -> OutMessage {
    OutMessage {
        topic,
        key: key.into(),
        shard: key.into(),
        broadcast: false,
        payload: Some(body.as_bytes().to_vec()),
    }
}

/// A consumer of `topic` that reads on from its group's commit.
fn streaming(group: &str, topic: Topic) -> ConsumerSpec {
    ConsumerSpec {
        group: group.into(),
        topics: vec![topic],
        rewind: Vec::new(),
        restore: Vec::new(),
    }
}

fn payloads(events: &[Event]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((
                String::from_utf8(m.payload.as_deref().unwrap_or_default().to_vec()).unwrap(),
                m.replay,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn tables_compact_and_replay_below_the_committed_offset() {
    let bus = InProcessBus::new(&TopicLayout {
        partitions: 1,
        replication: 1,
    });
    let prod = bus.producer().unwrap();
    prod.send(vec![
        msg(Topic::Config, "a", "a1"),
        msg(Topic::Config, "b", "b1"),
        msg(Topic::Config, "a", "a2"),
    ])
    .unwrap();
    assert_eq!(bus.retained(Topic::Config), 2);
    let spec = ConsumerSpec {
        group: "g".into(),
        topics: vec![Topic::Config],
        rewind: vec![Topic::Config],
        restore: Vec::new(),
    };
    let mut c = bus.consumer(&spec).unwrap();
    let ev = c.poll(10, Duration::from_millis(10)).unwrap();
    assert_eq!(ev[0], Event::Assigned(vec![(Topic::Config, 0)]));
    assert_eq!(ev[1], Event::CaughtUp);
    assert_eq!(
        payloads(&ev),
        vec![("b1".into(), false), ("a2".into(), false)]
    );
    c.commit(&[(Topic::Config, 0, 3)]).unwrap();
    prod.send(vec![msg(Topic::Config, "c", "c1")]).unwrap();

    // A restarted member rebuilds the table, then continues live.
    let mut c2 = bus.consumer(&spec).unwrap();
    let ev = c2.poll(10, Duration::from_millis(10)).unwrap();
    assert_eq!(
        payloads(&ev),
        vec![
            ("b1".into(), true),
            ("a2".into(), true),
            ("c1".into(), false)
        ]
    );
    assert!(ev.contains(&Event::CaughtUp));
    // Nothing more: the poll waits out its timeout.
    assert!(c2.poll(10, Duration::from_millis(20)).unwrap().is_empty());
}

#[test]
fn restored_topics_replay_to_their_end_whatever_was_committed() {
    let bus = InProcessBus::new(&TopicLayout {
        partitions: 1,
        replication: 1,
    });
    let prod = bus.producer().unwrap();
    prod.send(vec![
        msg(Topic::Findings, "f", "new"),
        msg(Topic::Findings, "g", "new"),
    ])
    .unwrap();
    let spec = ConsumerSpec {
        group: "g".into(),
        topics: vec![Topic::Findings],
        rewind: Vec::new(),
        restore: vec![Topic::Findings],
    };
    // Committed up to the first only: both are replayed all the same.
    bus.consumer(&spec)
        .unwrap()
        .commit(&[(Topic::Findings, 0, 1)])
        .unwrap();
    let mut c = bus.consumer(&spec).unwrap();
    let ev = c.poll(10, Duration::from_millis(10)).unwrap();
    assert_eq!(
        payloads(&ev),
        vec![("new".into(), true), ("new".into(), true)]
    );
    assert_eq!(ev.last(), Some(&Event::CaughtUp));
    // What comes later is live.
    prod.send(vec![msg(Topic::Findings, "f", "resolved")])
        .unwrap();
    let ev = c.poll(10, Duration::from_millis(10)).unwrap();
    assert_eq!(payloads(&ev), vec![("resolved".into(), false)]);
}

#[test]
fn streams_resume_from_commit_and_are_trimmed() {
    let bus = InProcessBus::new(&TopicLayout::default());
    let prod = bus.producer().unwrap();
    let spec = streaming("sink", Topic::DeadLetters);
    prod.send(
        (0..5)
            .map(|i| msg(Topic::DeadLetters, "k", &i.to_string()))
            .collect(),
    )
    .unwrap();
    let mut c = bus.consumer(&spec).unwrap();
    let ev = c.poll(3, Duration::from_millis(10)).unwrap();
    assert_eq!(payloads(&ev).len(), 3);
    let p = partition_for("k", 6);
    c.commit(&[(Topic::DeadLetters, p, 3)]).unwrap();
    assert_eq!(bus.retained(Topic::DeadLetters), 2);
    let mut c2 = bus.consumer(&spec).unwrap();
    let ev = c2.poll(10, Duration::from_millis(10)).unwrap();
    assert_eq!(
        payloads(&ev),
        vec![("3".into(), false), ("4".into(), false)]
    );
}

#[test]
fn telemetry_beyond_the_limit_is_refused_until_consumed() {
    let bus = InProcessBus::new(&TopicLayout::default()).with_telemetry_limit(10);
    let prod = bus.producer().unwrap();
    prod.send(vec![msg(Topic::Metrics, "k", "12345678")])
        .unwrap();
    let err = prod
        .send(vec![msg(Topic::Metrics, "k", "12345678")])
        .unwrap_err();
    assert!(matches!(err, BusError::Full { .. }), "{err}");
    // Nothing of the refused batch was kept; other topics are not limited.
    assert_eq!(bus.retained(Topic::Metrics), 1);
    prod.send(vec![msg(Topic::DeadLetters, "k", "12345678901234")])
        .unwrap();
    let mut c = bus.consumer(&streaming("t", Topic::Metrics)).unwrap();
    c.poll(10, Duration::from_millis(10)).unwrap();
    c.commit(&[(Topic::Metrics, partition_for("k", 6), 1)])
        .unwrap();
    prod.send(vec![msg(Topic::Metrics, "k", "12345678")])
        .unwrap();
}

#[test]
fn a_send_to_a_full_topic_waits_for_the_room_a_commit_frees() {
    let bus = InProcessBus::new(&TopicLayout::default()).with_telemetry_limit(10);
    let prod = bus.producer().unwrap();
    prod.send(vec![msg(Topic::Metrics, "k", "12345678")])
        .unwrap();
    let mut c = bus.consumer(&streaming("t", Topic::Metrics)).unwrap();
    c.poll(10, Duration::from_millis(10)).unwrap();
    let started = Instant::now();
    let freer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c.commit(&[(Topic::Metrics, partition_for("k", 6), 1)])
            .unwrap();
    });
    // Taken once the commit frees room, not refused.
    prod.send(vec![msg(Topic::Metrics, "k", "12345678")])
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(started.elapsed() < FULL_WAIT);
    freer.join().unwrap();
    assert_eq!(bus.retained(Topic::Metrics), 1);
}

#[test]
fn a_table_rewritten_forever_holds_its_keys_not_its_history() {
    let bus = InProcessBus::new(&TopicLayout {
        partitions: 1,
        ..TopicLayout::default()
    });
    let p = bus.producer().unwrap();
    for round in 0..20_000 {
        let batch = (0..5)
            .map(|k| msg(Topic::Config, &format!("k{k}"), &format!("r{round}")))
            .collect();
        p.send(batch).unwrap();
    }
    assert_eq!(bus.retained(Topic::Config), 5);
    let held = bus.shared.lock().logs[&Topic::Config][0].entries.len();
    assert!(held <= 2 * EMPTIED_SLACK + 10, "{held} slots for 5 keys");
    // A new group replays the table: the latest of each key, once.
    let mut c = bus
        .consumer(&ConsumerSpec {
            group: "g".into(),
            topics: vec![Topic::Config],
            rewind: vec![Topic::Config],
            restore: Vec::new(),
        })
        .unwrap();
    let got = payloads(&c.poll(100, Duration::from_millis(10)).unwrap());
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|(body, _)| body == "r19999"), "{got:?}");
}
