//! Files: the thumbnail time of a 12-megapixel photo (the image processor
//! alone), and upload throughput through a running server (begin, the
//! presigned PUT, complete), as a client does it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use ieum_domain::attachment::ContentType;
use ieum_domain::ports::ImageProcessor;
use serde_json::{Value, json};

#[derive(ClapArgs)]
pub struct ThumbArgs {
    /// Width and height of the generated photo (4000x3000: 12 megapixels).
    #[arg(long, default_value_t = 4000)]
    width: u32,
    #[arg(long, default_value_t = 3000)]
    height: u32,
    /// Timed runs after one warm-up.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

#[derive(ClapArgs)]
pub struct UploadArgs {
    /// The server's base URL (its IEUM_PUBLIC_URL).
    #[arg(long, default_value = "http://127.0.0.1:18099")]
    url: String,
    /// Bytes per upload.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    size: usize,
    /// Uploads in all.
    #[arg(long, default_value_t = 100)]
    uploads: usize,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// A photo-like JPEG: smooth gradients with noise, so it compresses as a
/// camera's does rather than as a flat colour.
fn photo(width: u32, height: u32) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_u32;
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed & 0x1f) as u8;
        image::Rgb([
            ((x * 255 / width) as u8).wrapping_add(noise),
            ((y * 255 / height) as u8).wrapping_add(noise),
            (((x + y) * 127 / (width + height)) as u8).wrapping_add(noise),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode the photo");
    out.into_inner()
}

pub async fn thumbnails(args: ThumbArgs) -> Result<(), String> {
    let bytes = photo(args.width, args.height);
    let processor = ieum_images::ImageCrateProcessor::default();
    println!(
        "photo: {}x{} ({:.1} MP), {} KiB JPEG",
        args.width,
        args.height,
        f64::from(args.width) * f64::from(args.height) / 1e6,
        bytes.len() / 1024
    );
    processor
        .process(&bytes, ContentType::Jpeg)
        .await
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let begun = Instant::now();
        let processed = processor
            .process(&bytes, ContentType::Jpeg)
            .await
            .map_err(|e| e.to_string())?;
        times.push(begun.elapsed());
        assert!(!processed.served.is_empty());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "strip + 320 px + 1280 px thumbnails: median {:.0} ms, min {:.0} ms, max {:.0} ms ({} runs)",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        args.runs
    );
    Ok(())
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<Value, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let answer = request.send().await.map_err(|e| e.to_string())?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
    }

    /// One upload end to end: begin, PUT to the presigned URL, complete.
    async fn upload(&self, token: &str, room: &str, bytes: Vec<u8>) -> Result<(), String> {
        let begun = self
            .json(
                "POST",
                "/api/uploads",
                Some(token),
                json!({"roomId": room, "fileName": "data.pdf", "contentType": "application/pdf", "size": bytes.len()}),
            )
            .await?;
        let mut put = self
            .http
            .put(begun["uploadUrl"].as_str().ok_or("no uploadUrl")?);
        for (name, value) in begun["headers"].as_object().ok_or("no headers")? {
            if !name.eq_ignore_ascii_case("content-length") {
                put = put.header(name, value.as_str().unwrap_or_default());
            }
        }
        let stored = put.body(bytes).send().await.map_err(|e| e.to_string())?;
        if !stored.status().is_success() {
            return Err(format!("PUT: {}", stored.status()));
        }
        let id = begun["uploadId"].as_str().ok_or("no uploadId")?;
        self.json(
            "POST",
            &format!("/api/uploads/{id}/complete"),
            Some(token),
            json!({}),
        )
        .await?;
        Ok(())
    }
}

pub async fn uploads(args: UploadArgs) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base: args.url.trim_end_matches('/').to_owned(),
    });
    let name = format!("bench{}", std::process::id());
    let signed = api
        .json(
            "POST",
            "/auth/signup",
            None,
            json!({"username": name, "password": "bench-password-1", "displayName": "bench"}),
        )
        .await?;
    let token = signed["data"]["accessToken"]
        .as_str()
        .ok_or("no accessToken")?
        .to_owned();
    let room = api
        .json(
            "POST",
            "/api/rooms",
            Some(&token),
            json!({"name": "bench files"}),
        )
        .await?;
    let room = room["id"].as_str().ok_or("no room id")?.to_owned();
    // A PDF header so the type check passes; the rest is incompressible.
    let mut body = b"%PDF-1.7\n".to_vec();
    let mut seed = 0x2545_f491_u32;
    body.extend((body.len()..args.size).map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as u8
    }));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let begun = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (api, token, room, body, next) = (
            api.clone(),
            token.clone(),
            room.clone(),
            body.clone(),
            next.clone(),
        );
        let total = args.uploads;
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                api.upload(&token, &room, body.clone()).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    let elapsed = begun.elapsed().as_secs_f64();
    let mib = (args.size * args.uploads) as f64 / (1024.0 * 1024.0);
    println!(
        "{} uploads of {} KiB, {} at a time: {:.1} s, {:.1} uploads/s, {:.1} MiB/s",
        args.uploads,
        args.size / 1024,
        args.concurrency,
        elapsed,
        args.uploads as f64 / elapsed,
        mib / elapsed
    );
    Ok(())
}
