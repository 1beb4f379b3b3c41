//! Unit tests of the hub: ordering, gap fill, slow consumers, feed retirement.

use super::*;
use crate::ports::{LocalBus, MockMessageRepository};
use std::time::Duration;

fn msg(seq: i64) -> Message {
    Message::text("r", seq, Uuid::nil(), &format!("m{seq}"))
}

async fn recv(rx: &mut MailboxReceiver) -> i64 {
    let d = tokio::time::timeout(Duration::from_secs(5), rx.rx.recv())
        .await
        .expect("delivery in time")
        .expect("open");
    d.event.seq.unwrap()
}

#[tokio::test]
async fn delivers_in_order_drops_duplicates_and_fills_gaps_from_the_store() {
    let mut repo = MockMessageRepository::new();
    repo.expect_last_seq().returning(|_| Ok(10));
    repo.expect_page()
        .withf(|room, q| room == "r" && q.after == Some(11) && q.before == Some(14))
        .times(1)
        .returning(|_, _| Ok(vec![msg(12), msg(13)]));
    let hub = Hub::new(Arc::new(repo), Arc::new(LocalBus));
    let (mb, mut rx) = mailbox(16);
    let upto = hub
        .subscribe("r", Uuid::nil(), "sub-0".into(), 0, mb)
        .await
        .unwrap();
    assert_eq!(upto, 10);

    hub.publish(RoomEvent::message(msg(10))).await; // old: dropped
    hub.publish(RoomEvent::message(msg(11))).await;
    hub.publish(RoomEvent::message(msg(14))).await; // gap 12..13 filled
    hub.publish(RoomEvent::message(msg(12))).await; // late duplicate: dropped
    hub.publish(RoomEvent::message(msg(15))).await;
    let got = [
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
    ];
    assert_eq!(got, [11, 12, 13, 14, 15]);
}

#[tokio::test]
async fn a_full_mailbox_is_dropped_and_told_while_others_go_on() {
    let mut repo = MockMessageRepository::new();
    repo.expect_last_seq().returning(|_| Ok(0));
    let hub = Hub::new(Arc::new(repo), Arc::new(LocalBus));
    let (slow, slow_rx) = mailbox(2);
    let (fast, mut fast_rx) = mailbox(64);
    hub.subscribe("r", Uuid::nil(), "s".into(), 0, slow)
        .await
        .unwrap();
    hub.subscribe("r", Uuid::nil(), "f".into(), 0, fast)
        .await
        .unwrap();
    for seq in 1..=5 {
        hub.publish(RoomEvent::message(msg(seq))).await;
    }
    tokio::time::timeout(Duration::from_secs(5), slow_rx.overflowed())
        .await
        .expect("slow consumer told");
    for seq in 1..=5 {
        assert_eq!(recv(&mut fast_rx).await, seq);
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_does_not_answer_fails_the_subscribe_clearly() {
    let mut repo = MockMessageRepository::new();
    repo.expect_last_seq()
        .times(5)
        .returning(|_| Err(DomainError::Unavailable("down".into())));
    let hub = Hub::new(Arc::new(repo), Arc::new(LocalBus));
    let (mb, _rx) = mailbox(4);
    let err = hub
        .subscribe("r", Uuid::nil(), "s".into(), 0, mb)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unavailable");
    assert_eq!(
        hub.active_rooms(),
        0,
        "the dead feed is gone; a later subscribe starts afresh"
    );
}

#[tokio::test]
async fn feeds_retire_when_their_last_subscriber_leaves() {
    let mut repo = MockMessageRepository::new();
    repo.expect_last_seq().returning(|_| Ok(0));
    let hub = Hub::new(Arc::new(repo), Arc::new(LocalBus));
    let (mb, _rx) = mailbox(4);
    hub.subscribe("r", Uuid::nil(), "s".into(), 0, mb.clone())
        .await
        .unwrap();
    assert_eq!(hub.active_rooms(), 1);
    hub.unsubscribe("r", &mb, "s".into());
    // The feed retires on its own task: resubscribing afterwards still works.
    for _ in 0..100 {
        if hub.active_rooms() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(hub.active_rooms(), 0);
    let upto = hub
        .subscribe("r", Uuid::nil(), "s2".into(), 0, mb)
        .await
        .unwrap();
    assert_eq!(upto, 0);
}

#[test]
fn wire_encodings_are_made_once() {
    let e = RoomEvent::message(msg(1));
    let calls = std::sync::atomic::AtomicUsize::new(0);
    for _ in 0..3 {
        let b = e.wire(1, |_| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            b"x".to_vec()
        });
        assert_eq!(&*b, b"x");
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
}

fn delivery(seq: i64) -> Delivery {
    Delivery {
        subscription: "s".into(),
        shape: 0,
        event: RoomEvent::message(msg(seq)),
    }
}

#[tokio::test]
async fn a_mailbox_keeps_order_refuses_when_full_and_says_so() {
    let (mb, mut rx) = mailbox(2);
    assert!(mb.offer(delivery(1)));
    assert!(mb.clone().offer(delivery(2)));
    assert!(!mb.offer(delivery(3)), "a third does not fit");
    tokio::time::timeout(Duration::from_secs(5), rx.overflowed())
        .await
        .expect("the owner is told it overflowed");
    assert_eq!((recv(&mut rx).await, recv(&mut rx).await), (1, 2));
    assert!(mb.offer(delivery(4)), "room again once read");
    assert_eq!(recv(&mut rx).await, 4);
}

#[tokio::test]
async fn a_mailbox_wakes_a_waiting_reader_and_ends_with_its_senders() {
    let (mb, mut rx) = mailbox(4);
    let reader = tokio::spawn(async move {
        let first = recv(&mut rx).await;
        let end = tokio::time::timeout(Duration::from_secs(5), rx.rx.recv())
            .await
            .expect("the end in time");
        (first, end.is_none())
    });
    tokio::task::yield_now().await;
    assert!(mb.offer(delivery(7)));
    drop(mb);
    assert_eq!(reader.await.unwrap(), (7, true));
}

#[tokio::test]
async fn a_mailbox_whose_reader_is_gone_takes_nothing() {
    let (mb, rx) = mailbox(4);
    assert!(!mb.is_closed());
    drop(rx);
    assert!(mb.is_closed());
    assert!(!mb.offer(delivery(1)));
}

#[tokio::test]
async fn a_cancelled_receive_loses_no_delivery() {
    let (mb, mut rx) = mailbox(4);
    // A receive that waits, then is dropped (another select! branch won).
    assert!(
        tokio::time::timeout(Duration::from_millis(10), rx.rx.recv())
            .await
            .is_err()
    );
    assert!(mb.offer(delivery(1)));
    assert!(mb.offer(delivery(2)));
    assert_eq!((recv(&mut rx).await, recv(&mut rx).await), (1, 2));
}
