//! Attachments over HTTP on every backend (protocol §14): uploads resumed after cuts at random
//! offsets end byte-identical, an upload id twice is one file, a message naming an unfinished
//! upload is refused and then accepted, disguised types are refused, downloads are for those
//! who see the message (and look missing to everyone else), limits hold.

mod common;

use protocol::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use testkit::{uuid, HttpResponse, Rng};

use common::{Backend, TestServer};

const CHUNK_TYPE: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A PDF-looking file of `len` bytes (random after the signature).
fn pdf(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A real PNG of `width`×`height`.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a PNG");
    out.into_inner()
}

struct Client<'a> {
    server: &'a TestServer,
    token: String,
}

impl<'a> Client<'a> {
    fn new(server: &'a TestServer, user: &str, role: Role) -> Self {
        Client {
            server,
            token: server.token(user, role),
        }
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    async fn create(
        &self,
        id: &str,
        conversation: &str,
        name: &str,
        length: usize,
    ) -> HttpResponse {
        let body = json!({"conversation": conversation, "length": length, "name": name, "type": "image/jpeg"});
        self.server
            .http
            .json(
                "PUT",
                &format!("/v1/uploads/{id}"),
                Some(&self.token),
                &body,
            )
            .await
    }

    async fn patch(&self, id: &str, offset: usize, bytes: &[u8]) -> HttpResponse {
        let bearer = self.bearer();
        let offset = offset.to_string();
        let headers = [
            ("Authorization", bearer.as_str()),
            ("Upload-Offset", offset.as_str()),
            CHUNK_TYPE,
        ];
        self.server
            .http
            .send("PATCH", &format!("/v1/uploads/{id}"), &headers, bytes)
            .await
    }

    async fn head(&self, id: &str) -> HttpResponse {
        let bearer = self.bearer();
        self.server
            .http
            .send(
                "HEAD",
                &format!("/v1/uploads/{id}"),
                &[("Authorization", &bearer)],
                &[],
            )
            .await
    }

    async fn offset(&self, id: &str) -> usize {
        let head = self.head(id).await;
        assert_eq!(head.status, 200, "{}", head.body);
        head.header("upload-offset").unwrap().parse().unwrap()
    }

    /// Uploads `bytes` whole in one chunk; answers the final response.
    async fn upload(&self, id: &str, conversation: &str, name: &str, bytes: &[u8]) -> HttpResponse {
        let created = self.create(id, conversation, name, bytes.len()).await;
        assert_eq!(created.status, 201, "{}", created.body);
        self.patch(id, 0, bytes).await
    }

    async fn send(
        &self,
        conversation: &str,
        id: &str,
        body: &str,
        attachments: &[&str],
    ) -> HttpResponse {
        let body = json!({"id": id, "body": body, "attachments": attachments});
        self.server
            .http
            .json(
                "POST",
                &format!("/v1/conversations/{conversation}/messages"),
                Some(&self.token),
                &body,
            )
            .await
    }

    async fn download(&self, path: &str, extra: &[(&str, &str)]) -> HttpResponse {
        let bearer = self.bearer();
        let mut headers = vec![("Authorization", bearer.as_str())];
        headers.extend_from_slice(extra);
        self.server.http.send("GET", path, &headers, &[]).await
    }
}

/// A request whose body is cut after `sent` of `declared` bytes: the connection closes.
async fn cut_patch(
    server: &TestServer,
    token: &str,
    id: &str,
    offset: usize,
    bytes: &[u8],
    sent: usize,
) {
    use tokio::io::AsyncWriteExt;
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "PATCH /v1/uploads/{id} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&bytes[..sent]).await.unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);
}

async fn an_upload_cut_at_random_offsets_is_stored_byte_identical(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let ana = Client::new(&server, "ana", Role::Client);
    let seed = 0x5eed_0015;
    let mut rng = Rng(seed);
    let file = pdf(&mut rng, 300_000);
    let id = uuid();
    assert_eq!(
        ana.create(&id, "b1", "invoice.pdf", file.len())
            .await
            .status,
        201
    );
    let mut cuts = 0;
    while ana.offset(&id).await < file.len() {
        let offset = ana.offset(&id).await;
        let end = (offset + 1 + rng.below(80_000)).min(file.len());
        let chunk = &file[offset..end];
        if rng.chance(50) {
            // Cut midway: nothing of a cut request counts; the device asks and resumes.
            cut_patch(
                &server,
                &ana.token,
                &id,
                offset,
                chunk,
                rng.below(chunk.len()),
            )
            .await;
            cuts += 1;
            continue;
        }
        if rng.chance(20) && offset > 0 {
            // A chunk from the wrong offset is refused with the offset to resume from.
            let wrong = ana.patch(&id, offset - 1, &file[offset - 1..end]).await;
            assert_eq!(wrong.status, 409, "seed {seed}: {}", wrong.body);
            assert_eq!(wrong.problem_code(), "offset_mismatch");
            assert_eq!(wrong.json()["offset"], offset, "seed {seed}");
            assert_eq!(
                wrong.header("upload-offset"),
                Some(offset.to_string().as_str())
            );
        }
        let answer = ana.patch(&id, offset, chunk).await;
        assert_eq!(answer.status, 200, "seed {seed}: {}", answer.body);
        assert_eq!(
            answer.header("upload-offset"),
            Some(end.to_string().as_str())
        );
    }
    assert!(cuts > 0, "seed {seed}: the run cut no request");
    let stored = ana
        .server
        .http
        .get(&format!("/v1/uploads/{id}"), Some(&ana.token))
        .await;
    let stored = stored.json();
    assert_eq!(stored["state"], "complete", "seed {seed}: {stored}");
    assert_eq!(stored["type"], "application/pdf");
    assert_eq!(stored["sha256"], sha256(&file), "seed {seed}");
    // The message makes it downloadable by the others; the bytes are the file's.
    assert_eq!(
        ana.send("b1", &uuid(), "the invoice", &[&id]).await.status,
        201
    );
    let olga = Client::new(&server, "olga", Role::Operator);
    let download = olga.download(&format!("/v1/attachments/{id}"), &[]).await;
    assert_eq!(download.status, 200);
    assert_eq!(sha256(&download.bytes), sha256(&file), "seed {seed}");
    // A repeat of the last chunk after completion is harmless.
    assert_eq!(ana.patch(&id, file.len(), &[]).await.status, 200);
    // Ranges.
    let part = olga
        .download(
            &format!("/v1/attachments/{id}"),
            &[("Range", "bytes=100-199")],
        )
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, &file[100..200]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{}", file.len()).as_str())
    );
    let past = olga
        .download(
            &format!("/v1/attachments/{id}"),
            &[("Range", "bytes=999999-")],
        )
        .await;
    assert_eq!(past.status, 416);
}

async fn the_same_upload_id_twice_is_one_upload(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let ana = Client::new(&server, "ana", Role::Client);
    let id = uuid();
    let first = ana.create(&id, "b1", "a.pdf", 20).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = ana.create(&id, "b1", "a.pdf", 20).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["offset"], 0);
    // The same id for something else is a conflict, for its owner and for anyone else.
    assert_eq!(
        ana.create(&id, "b1", "a.pdf", 21).await.problem_code(),
        "id_conflict"
    );
    let olga = Client::new(&server, "olga", Role::Operator);
    assert_eq!(
        olga.create(&id, "b1", "a.pdf", 20).await.problem_code(),
        "id_conflict"
    );
    let mut rng = Rng(7);
    let file = pdf(&mut rng, 20);
    assert_eq!(ana.patch(&id, 0, &file[..10]).await.status, 200);
    // Created again mid-way: still one upload, at its offset.
    let midway = ana.create(&id, "b1", "a.pdf", 20).await;
    assert_eq!(midway.json()["offset"], 10);
    assert_eq!(
        ana.patch(&id, 10, &file[10..]).await.json()["state"],
        "complete"
    );
    let usage = server.state.store.storage_usage().await.unwrap();
    assert_eq!(usage.uploads, 1);
    assert_eq!(usage.bytes, 20);
}

async fn a_message_naming_an_unfinished_upload_is_refused_then_accepted(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let ana = Client::new(&server, "ana", Role::Client);
    let mut rng = Rng(11);
    let file = pdf(&mut rng, 1000);
    let id = uuid();
    assert_eq!(
        ana.create(&id, "b1", "plan.pdf", file.len()).await.status,
        201
    );
    assert_eq!(ana.patch(&id, 0, &file[..500]).await.status, 200);
    let message = uuid();
    let refused = ana.send("b1", &message, "", &[&id]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.problem_code(), "attachment_pending");
    assert!(server.http.history(&ana.token, "b1").await.is_empty());
    assert_eq!(ana.patch(&id, 500, &file[500..]).await.status, 200);
    let accepted = ana.send("b1", &message, "", &[&id]).await;
    assert_eq!(accepted.status, 201, "{}", accepted.body);
    let stored = accepted.json();
    assert_eq!(stored["body"], "");
    assert_eq!(stored["attachments"][0]["id"], id.as_str());
    assert_eq!(stored["attachments"][0]["name"], "plan.pdf");
    assert_eq!(stored["attachments"][0]["type"], "application/pdf");
    assert_eq!(stored["attachments"][0]["size"], 1000);
    assert_eq!(stored["attachments"][0]["sha256"], sha256(&file));
    // Idempotent: the same message again is the same; other attachments under its id conflict.
    assert_eq!(ana.send("b1", &message, "", &[&id]).await.status, 200);
    assert_eq!(
        ana.send("b1", &message, "", &[]).await.problem_code(),
        "empty_message"
    );
    let other = uuid();
    ana.upload(&other, "b1", "b.pdf", &file).await;
    assert_eq!(
        ana.send("b1", &message, "", &[&other]).await.problem_code(),
        "id_conflict"
    );
    let history = server.http.history(&ana.token, "b1").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].attachments[0].sha256, sha256(&file));
    // Someone else's upload, an unknown id, a non-UUID, the same id twice: not found.
    server.conversation("b1", &[("bea", Role::Client)]).await;
    let bea = Client::new(&server, "bea", Role::Client);
    for names in [vec![id.as_str()], vec!["not-a-uuid"]] {
        assert_eq!(
            bea.send("b1", &uuid(), "x", &names).await.problem_code(),
            "attachment_not_found"
        );
    }
    let unknown = uuid();
    assert_eq!(
        ana.send("b1", &uuid(), "x", &[&unknown])
            .await
            .problem_code(),
        "attachment_not_found"
    );
    assert_eq!(
        ana.send("b1", &uuid(), "x", &[&other, &other])
            .await
            .problem_code(),
        "attachment_not_found"
    );
}

async fn a_forbidden_type_is_refused_whatever_its_name(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let ana = Client::new(&server, "ana", Role::Client);
    let mut broken_png = png(4, 4);
    broken_png.truncate(30);
    let disguised: [(&str, Vec<u8>); 4] = [
        (
            "photo.jpg",
            b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec(),
        ),
        (
            "map.png",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>"#.to_vec(),
        ),
        ("scan.pdf", b"#!/bin/sh\nrm -rf /\n".to_vec()),
        ("lock.png", broken_png),
    ];
    for (name, bytes) in disguised {
        let id = uuid();
        let answer = ana.upload(&id, "b1", name, &bytes).await;
        assert_eq!(answer.status, 415, "{name}: {}", answer.body);
        assert_eq!(answer.problem_code(), "unsupported_type");
        let upload = server
            .http
            .get(&format!("/v1/uploads/{id}"), Some(&ana.token))
            .await;
        assert_eq!(upload.json()["state"], "refused", "{name}");
        assert_eq!(
            ana.send("b1", &uuid(), "look", &[&id]).await.problem_code(),
            "attachment_not_found",
            "{name}"
        );
    }
    let allowed = ana.upload(&uuid(), "b1", "lock.png", &png(800, 400)).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let upload = allowed.json();
    assert_eq!(upload["type"], "image/png");
    assert_eq!(
        (upload["width"].clone(), upload["height"].clone()),
        (json!(800), json!(400))
    );
    assert_eq!(upload["thumb"], true);
    let metrics = server.http.get("/metrics", None).await.body;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    assert_eq!(
        value("surechat_uploads_decided_total{outcome=\"refused\"}"),
        4
    );
    assert_eq!(
        value("surechat_uploads_decided_total{outcome=\"complete\"}"),
        1
    );
    assert_eq!(value("surechat_uploads_created_total"), 5);
    assert_eq!(value("surechat_uploads_stored"), 5);
    assert_eq!(
        value("surechat_attachment_storage_bytes"),
        upload["size"].as_u64().unwrap()
    );
}

/// Status, code and detail: what tells a missing file from a hidden one, if anything does.
fn answer_of(response: &HttpResponse) -> (u16, Value) {
    let problem = response.json();
    (response.status, json!([problem["code"], problem["detail"]]))
}

async fn downloads_are_for_those_who_see_the_message(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    server.booking("b2").await;
    server
        .conversation("b1", &[("olga", Role::Operator), ("omar", Role::Operator)])
        .await;
    let ana = Client::new(&server, "ana", Role::Client);
    let olga = Client::new(&server, "olga", Role::Operator);
    let omar = Client::new(&server, "omar", Role::Operator);
    let other_client = Client::new(&server, "guest-b2", Role::Client);
    server
        .conversation("b2", &[("guest-b2", Role::Client)])
        .await;
    let stranger = Client::new(&server, "stranger", Role::Client);
    let photo = png(64, 32);
    let id = uuid();
    assert_eq!(ana.upload(&id, "b1", "lock.png", &photo).await.status, 200);
    let path = format!("/v1/attachments/{id}");
    // Before a message names it, only its uploader sees it.
    assert_eq!(ana.download(&path, &[]).await.status, 200);
    let missing = olga
        .download(&format!("/v1/attachments/{}", uuid()), &[])
        .await;
    assert_eq!(
        answer_of(&olga.download(&path, &[]).await),
        answer_of(&missing)
    );
    assert_eq!(
        ana.send("b1", &uuid(), "the lock", &[&id]).await.status,
        201
    );
    let got = olga.download(&path, &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.bytes, photo);
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        got.header("content-security-policy"),
        Some("default-src 'none'; sandbox")
    );
    assert!(got
        .header("content-disposition")
        .unwrap()
        .starts_with("inline"));
    assert_eq!(got.header("content-type"), Some("image/png"));
    for outsider in [&other_client, &stranger] {
        assert_eq!(
            answer_of(&outsider.download(&path, &[]).await),
            answer_of(&missing)
        );
        assert_eq!(
            answer_of(&outsider.download(&format!("{path}/thumb"), &[]).await),
            answer_of(&missing)
        );
        assert_eq!(
            answer_of(&outsider.download(&format!("{path}/link"), &[]).await),
            answer_of(&missing)
        );
    }
    // Signed links: work without a token, for their time and file only.
    let link = olga.download(&format!("{path}/link"), &[]).await.json();
    let url = link["url"].as_str().unwrap().to_owned();
    assert_eq!(server.http.get(&url, None).await.bytes, photo);
    let thumb = server
        .http
        .get(link["thumb_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(thumb.status, 200);
    assert_eq!(&thumb.bytes[..3], &[0xff, 0xd8, 0xff], "a JPEG thumbnail");
    let altered = url.replace("u=olga", "u=omar");
    assert_eq!(
        answer_of(&server.http.get(&altered, None).await),
        answer_of(&missing)
    );
    let expired = {
        let exp: u64 = url
            .split("exp=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        url.replace(&format!("exp={exp}"), &format!("exp={}", exp - 10_000))
    };
    assert_eq!(
        answer_of(&server.http.get(&expired, None).await),
        answer_of(&missing)
    );
    // A participant removed: their link stops working.
    let removed = server
        .http
        .raw(
            "DELETE",
            "/v1/conversations/b1/participants/olga",
            Some(common::ADMIN),
            None,
        )
        .await;
    assert!(removed.status < 300, "{}", removed.body);
    assert_eq!(
        answer_of(&server.http.get(&url, None).await),
        answer_of(&missing)
    );
    // A PDF is a download, never rendered.
    let pdf_id = uuid();
    let mut rng = Rng(3);
    ana.upload(&pdf_id, "b1", "evil \"name\".pdf", &pdf(&mut rng, 100))
        .await;
    ana.send("b1", &uuid(), "", &[&pdf_id]).await;
    let got = omar
        .download(&format!("/v1/attachments/{pdf_id}"), &[])
        .await;
    assert_eq!(got.status, 200);
    let disposition = got.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"evil _name_.pdf\""),
        "{disposition}"
    );
    // A note's file is for operators only.
    let note_file = uuid();
    omar.upload(&note_file, "b1", "internal.png", &photo).await;
    let note =
        json!({"id": uuid(), "body": "internal", "kind": "note", "attachments": [note_file]});
    let sent = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&omar.token),
            &note,
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    let note_path = format!("/v1/attachments/{note_file}");
    assert_eq!(
        answer_of(&ana.download(&note_path, &[]).await),
        answer_of(&missing)
    );
    assert_eq!(omar.download(&note_path, &[]).await.status, 200);
}

async fn limits_are_checked_before_any_byte(backend: Backend) {
    let server = TestServer::with_config(backend, |c| {
        c.attachment_bytes_max = 1000;
        c.uploads_per_minute = 3;
        c.upload_bytes_per_day = 2500;
    })
    .await;
    server.booking("b1").await;
    let ana = Client::new(&server, "ana", Role::Client);
    let large = ana.create(&uuid(), "b1", "big.pdf", 1001).await;
    assert_eq!(large.status, 413);
    assert_eq!(large.problem_code(), "attachment_too_large");
    for _ in 0..2 {
        assert_eq!(ana.create(&uuid(), "b1", "a.pdf", 1000).await.status, 201);
    }
    let quota = ana.create(&uuid(), "b1", "a.pdf", 1000).await;
    assert_eq!(quota.status, 429, "{}", quota.body);
    assert_eq!(quota.problem_code(), "upload_quota");
    assert!(quota.header("retry-after").is_some());
    assert_eq!(ana.create(&uuid(), "b1", "a.pdf", 100).await.status, 201);
    let rate = ana.create(&uuid(), "b1", "a.pdf", 10).await;
    assert_eq!(rate.problem_code(), "rate_limited");
    // Not a participant: the conversation does not exist for them.
    let bea = Client::new(&server, "bea", Role::Client);
    assert_eq!(
        bea.create(&uuid(), "b1", "a.pdf", 10).await.problem_code(),
        "not_found"
    );
    // Bad names and chunks.
    assert_eq!(
        ana.create(&uuid(), "b1", "", 10).await.problem_code(),
        "bad_request"
    );
    assert_eq!(
        ana.create(&uuid(), "b1", "a\nb", 10).await.problem_code(),
        "bad_request"
    );
}

async fn over_websocket_an_unfinished_upload_holds_the_messages_behind_it(backend: Backend) {
    use protocol::frames::{self, ClientFrame, ServerFrame};
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let ana = Client::new(&server, "ana", Role::Client);
    let mut device = server.device("ana", Role::Client).await;
    device.until_synced("b1").await;
    let mut rng = Rng(5);
    let file = pdf(&mut rng, 2000);
    let upload = uuid();
    ana.create(&upload, "b1", "plan.pdf", file.len()).await;
    ana.patch(&upload, 0, &file[..1000]).await;
    let send = |id: &str, body: &str, attachments: Vec<String>| {
        ClientFrame::Send(frames::Send {
            id: id.into(),
            conversation: "b1".into(),
            body: body.into(),
            kind: Default::default(),
            attachments,
        })
    };
    let (before, photo, after) = (uuid(), uuid(), uuid());
    device.send(&send(&before, "before", vec![])).await;
    device.send(&send(&photo, "", vec![upload.clone()])).await;
    device.send(&send(&after, "after", vec![])).await;
    assert_eq!(device.ack(&before).await.seq, 1);
    let pending = device.error_for(Some(&photo)).await;
    assert_eq!(pending.code.as_str(), "attachment_pending");
    assert!(!pending.permanent);
    // FIFO: the text behind the photo is not stored ahead of it.
    assert_eq!(
        device.error_for(Some(&after)).await.code.as_str(),
        "out_of_order"
    );
    ana.patch(&upload, 1000, &file[1000..]).await;
    device.send(&send(&photo, "", vec![upload.clone()])).await;
    device.send(&send(&after, "after", vec![])).await;
    assert_eq!(device.ack(&photo).await.seq, 2);
    assert_eq!(device.ack(&after).await.seq, 3);
    let mut olga = server.device("olga", Role::Operator).await;
    let (history, _) = olga.until_synced("b1").await;
    let bodies: Vec<_> = history
        .iter()
        .map(|m| (m.body.as_str(), m.attachments.len()))
        .collect();
    assert_eq!(bodies, [("before", 0), ("", 1), ("after", 0)]);
    assert_eq!(history[1].attachments[0].sha256, sha256(&file));
    // Live too: the frame carries the description.
    let live = uuid();
    let second = uuid();
    ana.upload(&second, "b1", "b.pdf", &file).await;
    device
        .send(&send(&live, "another", vec![second.clone()]))
        .await;
    let got = olga
        .wait_for("the live message with its file", |f| match f {
            ServerFrame::Message(m) if m.id == live => Some(m.clone()),
            _ => None,
        })
        .await;
    assert_eq!(got.attachments[0].id, second);
    assert_eq!(got.attachments[0].name, "b.pdf");
}

async fn erasing_a_conversation_tells_its_devices_and_forgets_its_files(backend: Backend) {
    use protocol::frames::ServerFrame;
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let ana = Client::new(&server, "ana", Role::Client);
    let upload = uuid();
    assert_eq!(
        ana.upload(&upload, "b1", "lock.png", &png(8, 8))
            .await
            .status,
        200
    );
    assert_eq!(
        ana.send("b1", &uuid(), "the lock", &[&upload]).await.status,
        201
    );
    let mut olga = server.device("olga", Role::Operator).await;
    olga.until_synced("b1").await;
    let erased = server
        .http
        .raw("DELETE", "/v1/conversations/b1", Some(common::ADMIN), None)
        .await;
    assert_eq!(erased.status, 204, "{}", erased.body);
    let left = olga
        .wait_for("left b1", |f| match f {
            ServerFrame::Left(l) if l.conversation == "b1" => Some(l.clone()),
            _ => None,
        })
        .await;
    assert_eq!(left.conversation, "b1");
    let download = ana
        .download(&format!("/v1/attachments/{upload}"), &[])
        .await;
    assert_eq!(download.problem_code(), "not_found");
    let history = server
        .http
        .get("/v1/conversations/b1/messages", Some(&ana.token))
        .await;
    assert_eq!(history.problem_code(), "not_found");
    let again = server
        .http
        .raw("DELETE", "/v1/conversations/b1", Some(common::ADMIN), None)
        .await;
    assert_eq!(again.problem_code(), "not_found");
}

backend_tests!(
    an_upload_cut_at_random_offsets_is_stored_byte_identical,
    the_same_upload_id_twice_is_one_upload,
    a_message_naming_an_unfinished_upload_is_refused_then_accepted,
    a_forbidden_type_is_refused_whatever_its_name,
    downloads_are_for_those_who_see_the_message,
    limits_are_checked_before_any_byte,
    over_websocket_an_unfinished_upload_holds_the_messages_behind_it,
    erasing_a_conversation_tells_its_devices_and_forgets_its_files,
);
