//! Benign traffic: a shop (`shop.example.com`), its static assets (`static.example.com`)
//! and its REST API (`api.example.com`), visited by browsers (Chrome, Firefox, Safari),
//! curl and a mobile app. One request is made in three steps: pick what is requested
//! ([`What`]), pick a client that would request it ([`Client`]), then build the URI, the
//! client's header set and the body, and finish with a consistent Content-Length.
//!
//! Everything here is meant to pass CRS 3.3.4 at paranoia 1: Host is a name (920350),
//! Accept and User-Agent are always sent (920300/920320 at PL2), GET/HEAD never carry a
//! body (920170), POST always carries Content-Length (920180), content types are from
//! `tx.allowed_request_content_type` with a `utf-8` charset (920420/920480), no path ends
//! in a restricted extension (920440) or names a restricted file (930130), and values are
//! drawn from word lists without quotes, semicolons or `--`. One exception is on purpose:
//! PUT, PATCH and DELETE are real REST traffic, but CRS's default `tx.allowed_methods`
//! (`GET HEAD POST OPTIONS`) makes 911100 flag them; their kinds start `benign/rest-` so a
//! harness can tell them apart.

use crate::GeneratedRequest;
use crate::dice::Dice;
use crate::http::{Json, Part, form_encode, multipart_body, obj, set_content_length, xml_escape};
use crate::words::*;
use waf_engine::request::Request;

#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Static,
    Page,
    Search,
    ApiRead,
    ApiAction,
    Form,
    Upload,
    Xml,
    Preflight,
    RestWrite,
    RestDelete,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    Chrome,
    Firefox,
    Safari,
    Curl,
    App,
}

impl Client {
    fn is_browser(self) -> bool {
        matches!(self, Client::Chrome | Client::Firefox | Client::Safari)
    }
}

const SHOP: &str = "shop.example.com";
const API: &str = "api.example.com";
const STATIC: &str = "static.example.com";

/// The share of each kind of request, in percent.
const MIX: &[(usize, What)] = &[
    (26, What::Static),
    (18, What::Page),
    (8, What::Search),
    (16, What::ApiRead),
    (3, What::ApiAction),
    (8, What::Form),
    (4, What::Upload),
    (3, What::Xml),
    (3, What::Preflight),
    (9, What::RestWrite),
    (2, What::RestDelete),
];

/// Body sizes: most small, a long tail to 64 KB (ranges in bytes, weights in percent).
const BODY_SIZES: &[(usize, (usize, usize))] = &[
    (30, (16, 128)),
    (35, (128, 1024)),
    (22, (1024, 4096)),
    (10, (4096, 16384)),
    (3, (16384, 65536)),
];

/// Builds the request under construction.
struct Draft {
    method: &'static str,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

pub(crate) fn generate(d: &mut Dice) -> GeneratedRequest {
    let what = d.weighted(MIX);
    let client = pick_client(d, what);
    let (kind, draft) = match what {
        What::Static => static_asset(d, client),
        What::Page => page(d, client),
        What::Search => search(d, client),
        What::ApiRead => api_read(d, client),
        What::ApiAction => api_action(d, client),
        What::Form => form(d, client),
        What::Upload => upload(d, client),
        What::Xml => xml(d, client),
        What::Preflight => preflight(d, client),
        What::RestWrite => rest_write(d, client),
        What::RestDelete => rest_delete(d, client),
    };
    finish(d, kind, draft)
}

fn pick_client(d: &mut Dice, what: What) -> Client {
    let browsers: &[(usize, Client)] =
        &[(50, Client::Chrome), (25, Client::Firefox), (25, Client::Safari)];
    let api: &[(usize, Client)] =
        &[(45, Client::App), (20, Client::Curl), (25, Client::Chrome), (10, Client::Firefox)];
    match what {
        What::Static | What::Page | What::Search => {
            if d.chance(6) {
                Client::Curl
            } else {
                d.weighted(browsers)
            }
        }
        What::Form | What::Upload | What::Preflight => d.weighted(browsers),
        What::Xml => {
            if d.chance(50) {
                Client::Curl
            } else {
                Client::App
            }
        }
        What::ApiRead | What::ApiAction | What::RestWrite | What::RestDelete => d.weighted(api),
    }
}

fn finish(d: &mut Dice, kind: &str, mut draft: Draft) -> GeneratedRequest {
    set_content_length(&mut draft.headers, draft.method, draft.body.len());
    let (client_ip, client_port) = crate::client_addr(d);
    let version = if d.chance(12) { "HTTP/1.0" } else { "HTTP/1.1" };
    GeneratedRequest {
        kind: format!("benign/{kind}"),
        encoding: None,
        request: Request {
            id: String::new(),
            method: draft.method.into(),
            uri: draft.uri.into_bytes(),
            version: version.into(),
            headers: draft.headers,
            body: draft.body,
            client_ip,
            client_port,
            server_ip: crate::SERVER_IP.into(),
            server_port: if d.chance(85) { 443 } else { 80 },
        },
    }
}

// ---- building blocks ----

fn slug(d: &mut Dice) -> String {
    format!("{}-{}", d.pick(ADJECTIVES), d.pick(NOUNS))
}

fn product_id(d: &mut Dice) -> usize {
    d.between(1000, 99999)
}

fn uuid(d: &mut Dice) -> String {
    format!("{}-{}-4{}-a{}-{}", d.hex(8), d.hex(4), d.hex(3), d.hex(3), d.hex(12))
}

fn person(d: &mut Dice) -> (String, String) {
    (d.pick(FIRST_NAMES).to_string(), d.pick(LAST_NAMES).to_string())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Words joined into sentences until about `len` bytes.
fn prose(d: &mut Dice, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut in_sentence = 0;
    while out.len() < len {
        let w = d.pick(PROSE);
        if in_sentence == 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&capitalise(w));
        } else {
            out.push(' ');
            out.push_str(w);
        }
        in_sentence += 1;
        if in_sentence > 5 && d.chance(20) {
            out.push('.');
            in_sentence = 0;
        }
    }
    if in_sentence > 0 {
        out.push('.');
    }
    out
}

fn body_size(d: &mut Dice) -> usize {
    let (lo, hi) = d.weighted(BODY_SIZES);
    d.between(lo, hi)
}

fn tracking_params(d: &mut Dice, q: &mut Vec<(String, String)>) {
    match d.below(6) {
        0 => {
            q.push((
                "utm_source".into(),
                d.pick(&["newsletter", "google", "facebook", "partner"]).to_string(),
            ));
            q.push((
                "utm_medium".into(),
                d.pick(&["email", "cpc", "social", "referral"]).to_string(),
            ));
            q.push((
                "utm_campaign".into(),
                format!(
                    "{}_{}",
                    d.pick(CATEGORIES),
                    d.pick(&["spring", "summer", "sale", "launch"])
                ),
            ));
        }
        1 => q.push(("gclid".into(), d.alnum(32))),
        2 => q.push(("fbclid".into(), d.alnum(40))),
        _ => {}
    }
}

fn query_string(q: &[(String, String)]) -> String {
    if q.is_empty() { String::new() } else { format!("?{}", form_encode(q)) }
}

fn cookies(d: &mut Dice, client: Client) -> Option<String> {
    if !client.is_browser() || d.chance(15) {
        return None;
    }
    let mut c = vec![format!("sid={}", d.hex(32))];
    if d.chance(70) {
        c.push(format!("cookie_consent={}", d.pick(&["all", "necessary", "analytics"])));
    }
    if d.chance(60) {
        let (a, b) = (d.between(100_000_000, 999_999_999), d.between(1_690_000_000, 1_705_000_000));
        c.push(format!("_ga=GA1.1.{a}.{b}"));
        c.push(format!("_gid=GA1.1.{}.{}", d.between(100_000_000, 999_999_999), b));
    }
    if d.chance(30) {
        c.push(format!("cart_id={}", uuid(d)));
    }
    if d.chance(25) {
        c.push(format!("lang={}", d.pick(&["en", "de", "fr", "es", "it"])));
    }
    if d.chance(15) {
        c.push(format!("theme={}", d.pick(&["dark", "light"])));
    }
    Some(c.join("; "))
}

fn accept_language(d: &mut Dice, client: Client) -> &'static str {
    match client {
        Client::Firefox => d.pick(&["en-US,en;q=0.5", "de,en-US;q=0.7,en;q=0.3"]),
        Client::Safari => d.pick(&["en-GB,en;q=0.9", "fr-FR,fr;q=0.9"]),
        _ => d.pick(&["en-US,en;q=0.9", "en-GB,en-US;q=0.9,en;q=0.8", "de-DE,de;q=0.9,en;q=0.8"]),
    }
}

/// What a browser sends as `Sec-Fetch-Dest` and `Accept` for a resource.
#[derive(Clone, Copy)]
enum Dest {
    Document,
    Script,
    Style,
    Image,
    Font,
    Fetch,
}

fn browser_accept(dest: Dest) -> &'static str {
    match dest {
        Dest::Document => {
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
        }
        Dest::Style => "text/css,*/*;q=0.1",
        Dest::Image => "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        Dest::Fetch => "application/json, text/plain, */*",
        Dest::Script | Dest::Font => "*/*",
    }
}

/// The header set of a client, in the order it sends them, without Content-Length.
fn headers(
    d: &mut Dice,
    client: Client,
    host: &str,
    dest: Dest,
    referer: Option<String>,
    content_type: Option<String>,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = Vec::new();
    let push = |h: &mut Vec<(String, String)>, n: &str, v: &str| h.push((n.into(), v.into()));
    let navigate = matches!(dest, Dest::Document);
    let dest_name = match dest {
        Dest::Document => "document",
        Dest::Script => "script",
        Dest::Style => "style",
        Dest::Image => "image",
        Dest::Font => "font",
        Dest::Fetch => "empty",
    };
    match client {
        Client::Chrome => {
            push(&mut h, "Host", host);
            push(&mut h, "Connection", "keep-alive");
            push(
                &mut h,
                "sec-ch-ua",
                "\"Not_A Brand\";v=\"8\", \"Chromium\";v=\"120\", \"Google Chrome\";v=\"120\"",
            );
            push(&mut h, "sec-ch-ua-mobile", "?0");
            push(&mut h, "sec-ch-ua-platform", d.pick(&["\"Windows\"", "\"macOS\"", "\"Linux\""]));
            if navigate {
                push(&mut h, "Upgrade-Insecure-Requests", "1");
            }
            let ua = d.pick(CHROME_UA);
            push(&mut h, "User-Agent", ua);
            push(&mut h, "Accept", browser_accept(dest));
            if let Some(ct) = &content_type {
                push(&mut h, "Content-Type", ct);
                push(&mut h, "Origin", &format!("https://{SHOP}"));
            }
            push(&mut h, "Sec-Fetch-Site", if referer.is_some() { "same-site" } else { "none" });
            push(&mut h, "Sec-Fetch-Mode", if navigate { "navigate" } else { "cors" });
            if navigate {
                push(&mut h, "Sec-Fetch-User", "?1");
            }
            push(&mut h, "Sec-Fetch-Dest", dest_name);
            if let Some(r) = &referer {
                push(&mut h, "Referer", r);
            }
            push(&mut h, "Accept-Encoding", "gzip, deflate, br");
            let al = accept_language(d, client);
            push(&mut h, "Accept-Language", al);
        }
        Client::Firefox => {
            push(&mut h, "Host", host);
            let ua = d.pick(FIREFOX_UA);
            push(&mut h, "User-Agent", ua);
            push(&mut h, "Accept", browser_accept(dest));
            let al = accept_language(d, client);
            push(&mut h, "Accept-Language", al);
            push(&mut h, "Accept-Encoding", "gzip, deflate, br");
            if let Some(ct) = &content_type {
                push(&mut h, "Content-Type", ct);
                push(&mut h, "Origin", &format!("https://{SHOP}"));
            }
            if let Some(r) = &referer {
                push(&mut h, "Referer", r);
            }
            push(&mut h, "Connection", "keep-alive");
            if navigate {
                push(&mut h, "Upgrade-Insecure-Requests", "1");
            }
            push(&mut h, "Sec-Fetch-Dest", dest_name);
            push(&mut h, "Sec-Fetch-Mode", if navigate { "navigate" } else { "cors" });
            push(&mut h, "Sec-Fetch-Site", if referer.is_some() { "same-origin" } else { "none" });
        }
        Client::Safari => {
            push(&mut h, "Host", host);
            push(&mut h, "Accept", browser_accept(dest));
            if let Some(ct) = &content_type {
                push(&mut h, "Content-Type", ct);
                push(&mut h, "Origin", &format!("https://{SHOP}"));
            }
            push(&mut h, "Sec-Fetch-Site", if referer.is_some() { "same-origin" } else { "none" });
            push(&mut h, "Sec-Fetch-Dest", dest_name);
            let ua = d.pick(SAFARI_UA);
            push(&mut h, "User-Agent", ua);
            let al = accept_language(d, client);
            push(&mut h, "Accept-Language", al);
            if let Some(r) = &referer {
                push(&mut h, "Referer", r);
            }
            push(&mut h, "Accept-Encoding", "gzip, deflate, br");
            push(&mut h, "Connection", "keep-alive");
        }
        Client::Curl => {
            push(&mut h, "Host", host);
            let ua = d.pick(CURL_UA);
            push(&mut h, "User-Agent", ua);
            push(
                &mut h,
                "Accept",
                if matches!(dest, Dest::Fetch) { "application/json" } else { "*/*" },
            );
            if let Some(ct) = &content_type {
                push(&mut h, "Content-Type", ct);
            }
        }
        Client::App => {
            push(&mut h, "Host", host);
            push(&mut h, "Accept", "application/json");
            push(&mut h, "Accept-Encoding", "gzip");
            let al = d.pick(&["en-US", "de-DE", "fr-FR", "es-ES"]);
            push(&mut h, "Accept-Language", al);
            let ua = d.pick(APP_UA);
            push(&mut h, "User-Agent", ua);
            let auth = format!(
                "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
                d.alnum(48),
                d.alnum(43)
            );
            push(&mut h, "Authorization", &auth);
            let rid = uuid(d);
            push(&mut h, "X-Request-Id", &rid);
            if let Some(ct) = &content_type {
                push(&mut h, "Content-Type", ct);
            }
        }
    }
    if let Some(c) = cookies(d, client) {
        h.push(("Cookie".into(), c));
    }
    h
}

fn shop_referer(d: &mut Dice) -> Option<String> {
    match d.below(5) {
        0 => None,
        1 => Some("https://www.google.com/".into()),
        2 => Some(format!("https://{SHOP}/")),
        _ => {
            let s = slug(d);
            let id = product_id(d);
            Some(format!("https://{SHOP}/products/{s}-{id}"))
        }
    }
}

// ---- request kinds ----

fn static_asset(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let h = d.hex(8);
    let (uri, dest) = match d.below(6) {
        0 => (
            format!("/static/js/{}.{h}.js", d.pick(&["app", "vendor", "runtime", "checkout"])),
            Dest::Script,
        ),
        1 => (format!("/static/css/{}.{h}.css", d.pick(&["main", "theme", "print"])), Dest::Style),
        2 | 3 => {
            let w = d.pick(&[200usize, 400, 800, 1200]);
            let ext = d.pick(&["webp", "jpg", "png", "avif"]);
            (format!("/img/products/{}-{w}w.{ext}", product_id(d)), Dest::Image)
        }
        4 => (
            format!("/fonts/{}.woff2", d.pick(&["inter-var", "roboto-regular", "lora-italic"])),
            Dest::Font,
        ),
        _ => (
            d.pick(&["/favicon.ico", "/img/logo.svg", "/apple-touch-icon.png", "/robots.txt"])
                .to_string(),
            Dest::Image,
        ),
    };
    let method = if d.chance(4) { "HEAD" } else { "GET" };
    let referer = Some(format!("https://{SHOP}/"));
    let headers = headers(d, client, STATIC, dest, referer, None);
    ("static", Draft { method, uri, headers, body: Vec::new() })
}

fn page(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let mut q = Vec::new();
    let path = match d.below(7) {
        0 => "/".to_string(),
        1 | 2 => format!("/products/{}-{}", slug(d), product_id(d)),
        3 => {
            let c = d.pick(CATEGORIES);
            if d.chance(60) {
                q.push(("page".into(), d.between(2, 20).to_string()));
                q.push((
                    "sort".into(),
                    d.pick(&["price_asc", "price_desc", "newest", "rating"]).to_string(),
                ));
            }
            if d.chance(30) {
                q.push(("per_page".into(), d.pick(&["24", "48", "96"]).to_string()));
            }
            format!("/category/{c}")
        }
        4 => format!(
            "/blog/{}/{}-{}-guide",
            d.between(2019, 2024),
            d.pick(ADJECTIVES),
            d.pick(NOUNS)
        ),
        5 => d
            .pick(&[
                "/about",
                "/help/shipping",
                "/help/returns",
                "/contact",
                "/account",
                "/cart",
                "/checkout",
            ])
            .to_string(),
        _ => format!("/stores/{}", d.pick(CITIES).to_lowercase()),
    };
    tracking_params(d, &mut q);
    let uri = format!("{path}{}", query_string(&q));
    let method = if d.chance(3) { "HEAD" } else { "GET" };
    let referer = shop_referer(d);
    let headers = headers(d, client, SHOP, Dest::Document, referer, None);
    ("page", Draft { method, uri, headers, body: Vec::new() })
}

fn search(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let mut terms = vec![d.pick(NOUNS).to_string()];
    for _ in 0..d.below(3) {
        terms.insert(0, d.pick(ADJECTIVES).to_string());
    }
    let mut q = vec![("q".to_string(), terms.join(" "))];
    if d.chance(40) {
        q.push(("page".into(), d.between(2, 9).to_string()));
    }
    if d.chance(25) {
        q.push(("category".into(), d.pick(CATEGORIES).to_string()));
    }
    if d.chance(20) {
        q.push(("min_price".into(), d.between(5, 50).to_string()));
        q.push(("max_price".into(), d.between(60, 900).to_string()));
    }
    tracking_params(d, &mut q);
    let uri = format!("/search{}", query_string(&q));
    let referer = Some(format!("https://{SHOP}/"));
    let headers = headers(d, client, SHOP, Dest::Document, referer, None);
    ("search", Draft { method: "GET", uri, headers, body: Vec::new() })
}

fn api_read(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let mut q = Vec::new();
    let path = match d.below(6) {
        0 => format!("/api/v2/products/{}", product_id(d)),
        1 => {
            q.push(("limit".into(), d.pick(&["10", "20", "50"]).to_string()));
            q.push(("offset".into(), (d.below(20) * 20).to_string()));
            if d.chance(50) {
                q.push(("fields".into(), "id,name,price,stock".to_string()));
            }
            format!("/api/v2/categories/{}/products", d.pick(CATEGORIES))
        }
        2 => {
            q.push(("status".into(), d.pick(&["shipped", "pending", "delivered"]).to_string()));
            format!("/api/v2/users/{}/orders", d.between(1, 500_000))
        }
        3 => format!("/api/v2/orders/{}", uuid(d)),
        4 => {
            q.push(("include".into(), "items".to_string()));
            format!("/api/v2/carts/{}", uuid(d))
        }
        _ => {
            q.push(("lat".into(), format!("{}.{}", d.between(36, 60), d.between(1000, 9999))));
            q.push(("lng".into(), format!("{}.{}", d.between(1, 25), d.between(1000, 9999))));
            q.push(("radius".into(), d.pick(&["5", "10", "25"]).to_string()));
            "/api/v2/stores/nearby".to_string()
        }
    };
    let uri = format!("{path}{}", query_string(&q));
    let referer = client.is_browser().then(|| format!("https://{SHOP}/"));
    let headers = headers(d, client, API, Dest::Fetch, referer, None);
    ("api-read", Draft { method: "GET", uri, headers, body: Vec::new() })
}

fn api_action(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let uri = match d.below(3) {
        0 => format!("/api/v2/carts/{}/checkout", uuid(d)),
        1 => format!("/api/v2/orders/{}/cancel", uuid(d)),
        _ => "/api/v2/session/refresh".to_string(),
    };
    let referer = client.is_browser().then(|| format!("https://{SHOP}/cart"));
    let headers = headers(d, client, API, Dest::Fetch, referer, None);
    ("api-action", Draft { method: "POST", uri, headers, body: Vec::new() })
}

/// A JSON document for the API, grown to about `target` bytes with review text.
fn json_doc(d: &mut Dice, target: usize) -> (String, Json) {
    match d.below(4) {
        0 => {
            let uri = format!("/api/v2/carts/{}/items", uuid(d));
            let doc = obj! {
                "product_id" => product_id(d),
                "quantity" => d.between(1, 5),
                "options" => obj! {"color" => d.pick(ADJECTIVES), "size" => d.pick(&["S", "M", "L", "XL"])},
                "gift_note" => prose(d, target.saturating_sub(120)),
            };
            (uri, doc)
        }
        1 => {
            let (f, l) = person(d);
            let uri = format!("/api/v2/users/{}/addresses", d.between(1, 500_000));
            let doc = obj! {
                "first_name" => capitalise(&f),
                "last_name" => capitalise(&l),
                "street" => format!("{} {} Street", d.between(1, 200), capitalise(d.pick(NOUNS))),
                "city" => d.pick(CITIES),
                "postal_code" => format!("{}", d.between(10000, 99999)),
                "country" => d.pick(&["DE", "FR", "ES", "IT", "PT", "AT", "NL"]),
                "default" => d.chance(50),
                "delivery_instructions" => prose(d, target.saturating_sub(220)),
            };
            (uri, doc)
        }
        2 => {
            let uri = format!("/api/v2/products/{}/reviews", product_id(d));
            let doc = obj! {
                "rating" => d.between(3, 5),
                "title" => capitalise(&format!("{} {}", d.pick(ADJECTIVES), d.pick(NOUNS))),
                "text" => prose(d, target.saturating_sub(80)),
                "recommend" => true,
            };
            (uri, doc)
        }
        _ => {
            let n = (target / 140).clamp(1, 40);
            let session = d.hex(32);
            let events: Vec<Json> = (0..n)
                .map(|i| {
                    obj! {
                        "type" => d.pick(&["page_view", "add_to_cart", "scroll", "click"]),
                        "path" => format!("/products/{}-{}", slug(d), product_id(d)),
                        "ts" => 1_700_000_000_000u64 + (i as u64) * 1000 + d.below(999) as u64,
                    }
                })
                .collect();
            ("/api/v2/events".to_string(), obj! {"session" => session, "events" => events})
        }
    }
}

fn rest_write(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let target = body_size(d);
    let (uri, doc) = json_doc(d, target);
    // Creating is POST; replacing and updating are PUT and PATCH.
    let method = d.weighted(&[(65, "POST"), (22, "PUT"), (13, "PATCH")]);
    let body = doc.to_text().into_bytes();
    let ct = if d.chance(50) { "application/json" } else { "application/json; charset=utf-8" };
    let referer = client.is_browser().then(|| format!("https://{SHOP}/account"));
    let headers = headers(d, client, API, Dest::Fetch, referer, Some(ct.into()));
    let kind = if method == "POST" { "json-api" } else { "rest-update" };
    (kind, Draft { method, uri, headers, body })
}

fn rest_delete(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let uri = match d.below(3) {
        0 => format!("/api/v2/carts/{}/items/{}", uuid(d), product_id(d)),
        1 => format!("/api/v2/users/{}/addresses/{}", d.between(1, 500_000), d.between(1, 9)),
        _ => format!("/api/v2/wishlists/{}/products/{}", d.between(1, 90_000), product_id(d)),
    };
    let referer = client.is_browser().then(|| format!("https://{SHOP}/account"));
    let headers = headers(d, client, API, Dest::Fetch, referer, None);
    ("rest-delete", Draft { method: "DELETE", uri, headers, body: Vec::new() })
}

fn form(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let (f, l) = person(d);
    let email = format!("{f}.{l}{}@example.net", d.below(100));
    let pw_len = d.between(10, 20);
    let (path, pairs): (&str, Vec<(String, String)>) = match d.below(4) {
        0 => (
            "/login",
            vec![
                ("email".into(), email),
                ("password".into(), d.alnum(pw_len)),
                ("remember_me".into(), "1".into()),
                ("csrf_token".into(), d.hex(40)),
            ],
        ),
        1 => (
            "/newsletter/subscribe",
            vec![("email".into(), email), ("topics[]".into(), d.pick(CATEGORIES).to_string())],
        ),
        2 => {
            let target = body_size(d);
            (
                "/contact",
                vec![
                    ("name".into(), format!("{} {}", capitalise(&f), capitalise(&l))),
                    ("email".into(), email),
                    ("subject".into(), format!("Question about my {}", d.pick(NOUNS))),
                    ("message".into(), prose(d, target)),
                    ("csrf_token".into(), d.hex(40)),
                ],
            )
        }
        _ => (
            "/checkout/address",
            vec![
                ("full_name".into(), format!("{} {}", capitalise(&f), capitalise(&l))),
                (
                    "street".into(),
                    format!("{} {} Road", d.between(1, 300), capitalise(d.pick(NOUNS))),
                ),
                ("city".into(), d.pick(CITIES).to_string()),
                ("zip".into(), d.between(10000, 99999).to_string()),
                ("phone".into(), format!("+49{}", d.between(1_500_000_000, 1_799_999_999))),
                ("shipping".into(), d.pick(&["standard", "express"]).to_string()),
            ],
        ),
    };
    let body = form_encode(&pairs).into_bytes();
    let referer = Some(format!("https://{SHOP}{path}"));
    let headers = headers(
        d,
        client,
        SHOP,
        Dest::Document,
        referer,
        Some("application/x-www-form-urlencoded".into()),
    );
    ("form", Draft { method: "POST", uri: path.into(), headers, body })
}

fn upload(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let boundary = match client {
        Client::Firefox => {
            format!("---------------------------{}", d.between(100_000_000, 999_999_999))
        }
        _ => format!("----WebKitFormBoundary{}", d.alnum(16)),
    };
    let size = body_size(d);
    let (path, parts) = if d.chance(50) {
        // An image: a PNG signature and opaque bytes, as a browser would send it.
        let mut img = b"\x89PNG\r\n\x1a\n".to_vec();
        img.extend(d.bytes(size));
        let name = format!("IMG_{}.png", d.between(1000, 9999));
        (
            "/account/avatar",
            vec![
                Part::field("csrf_token", &d.hex(40)),
                Part::file("avatar", &name, "image/png", img),
            ],
        )
    } else {
        let name = format!(
            "{}-{}.txt",
            d.pick(&["receipt", "notes", "invoice", "order"]),
            d.between(1, 999)
        );
        let text = prose(d, size).into_bytes();
        (
            "/support/attachments",
            vec![
                Part::field("ticket", &d.between(10000, 99999).to_string()),
                Part::field("description", &prose(d, 60)),
                Part::file("attachment", &name, "text/plain", text),
            ],
        )
    };
    let body = multipart_body(&boundary, &parts);
    let ct = format!("multipart/form-data; boundary={boundary}");
    let referer = Some(format!("https://{SHOP}{path}"));
    let headers = headers(d, client, SHOP, Dest::Document, referer, Some(ct));
    ("upload", Draft { method: "POST", uri: path.into(), headers, body })
}

fn xml(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let target = body_size(d);
    let (path, ct, doc) = if d.chance(50) {
        let sku = format!("SKU-{}", product_id(d));
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetStock xmlns=\"urn:example:inventory\"><Sku>{sku}</Sku><Warehouse>{}</Warehouse><Comment>{}</Comment></GetStock></soap:Body></soap:Envelope>",
            d.pick(CITIES),
            xml_escape(&prose(d, target.saturating_sub(300)))
        );
        ("/soap/inventory", "text/xml; charset=utf-8", doc)
    } else {
        let n = (target / 90).clamp(1, 60);
        let mut items = String::new();
        for _ in 0..n {
            items.push_str(&format!(
                "<item sku=\"SKU-{}\" qty=\"{}\"><name>{}</name></item>",
                product_id(d),
                d.between(1, 9),
                xml_escape(&slug(d))
            ));
        }
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<order id=\"{}\"><customer>{}</customer><items>{items}</items></order>",
            d.between(100_000, 999_999),
            d.between(1, 500_000)
        );
        ("/api/v1/orders.xml", "application/xml", doc)
    };
    let headers = headers(d, client, API, Dest::Fetch, None, Some(ct.into()));
    ("xml", Draft { method: "POST", uri: path.into(), headers, body: doc.into_bytes() })
}

fn preflight(d: &mut Dice, client: Client) -> (&'static str, Draft) {
    let path = match d.below(3) {
        0 => format!("/api/v2/carts/{}/items", uuid(d)),
        1 => format!("/api/v2/users/{}/addresses", d.between(1, 500_000)),
        _ => "/api/v2/events".to_string(),
    };
    let mut h = headers(d, client, API, Dest::Fetch, Some(format!("https://{SHOP}/")), None);
    h.retain(|(n, _)| n != "Cookie");
    h.push(("Origin".into(), format!("https://{SHOP}")));
    h.push((
        "Access-Control-Request-Method".into(),
        d.pick(&["POST", "PUT", "PATCH", "DELETE"]).to_string(),
    ));
    h.push(("Access-Control-Request-Headers".into(), "content-type,authorization".into()));
    ("preflight", Draft { method: "OPTIONS", uri: path, headers: h, body: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_reaches_its_length_and_stays_plain() {
        let mut d = Dice::new(5);
        for len in [0usize, 1, 50, 5000] {
            let p = prose(&mut d, len);
            assert!(p.len() >= len && p.len() < len + 40, "{len} -> {}", p.len());
            assert!(p.bytes().all(|b| b.is_ascii_alphabetic() || b == b' ' || b == b'.'), "{p}");
        }
    }

    #[test]
    fn benign_requests_are_well_formed() {
        let mut d = Dice::new(11);
        for _ in 0..500 {
            let g = generate(&mut d);
            let r = &g.request;
            assert!(r.header("Host").is_some_and(|h| h.ends_with(".example.com")), "{:?}", r);
            assert!(r.header("User-Agent").is_some() && r.header("Accept").is_some());
            if matches!(r.method.as_str(), "GET" | "HEAD") {
                assert!(r.body.is_empty());
                assert!(r.header("Content-Length").is_none());
            }
            if !r.body.is_empty() {
                assert!(r.header("Content-Type").is_some(), "{:?}", r);
            }
            let uri = std::str::from_utf8(&r.uri).unwrap();
            assert!(!uri.contains(['\'', ';', '"', ' ']) && !uri.contains("--"), "{uri}");
        }
    }
}
