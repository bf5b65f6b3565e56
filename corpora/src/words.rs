//! Word lists the generators draw from. Benign words are chosen so that CRS 3.3.4 at
//! paranoia 1 has nothing to find in them: no SQL keywords or operators (`or`, `and`,
//! `select`, ...) that libinjection could read as SQL, no shell command names, no PHP
//! function names (933150 matches those as substrings), nothing starting with `on`.

pub(crate) const NOUNS: &[&str] = &[
    "shoes", "jacket", "headphones", "lamp", "kettle", "backpack", "notebook", "camera",
    "blender", "sofa", "blanket", "mug", "bicycle", "helmet", "tent", "watch", "scarf",
    "printer", "monitor", "keyboard", "garden", "candle", "pillow", "teapot", "umbrella",
    "charger", "speaker", "mirror", "rug", "vase", "puzzle", "guitar", "drone", "tripod",
];

pub(crate) const ADJECTIVES: &[&str] = &[
    "red", "blue", "green", "black", "white", "wireless", "vintage", "organic", "compact",
    "waterproof", "leather", "wooden", "ceramic", "cotton", "lightweight", "foldable",
    "premium", "classic", "modern", "large", "small", "soft", "warm", "bright", "quiet",
];

pub(crate) const PROSE: &[&str] = &[
    "the", "a", "is", "was", "very", "good", "great", "quality", "delivery", "arrived",
    "quickly", "package", "would", "recommend", "this", "to", "friends", "price", "fits",
    "well", "color", "looks", "nice", "but", "slightly", "smaller", "expected", "happy",
    "with", "purchase", "thanks", "team", "support", "helpful", "again", "my", "family",
    "loves", "it", "perfect", "gift", "works", "fine", "after", "two", "weeks", "daily",
    "use", "easy", "setup", "battery", "lasts", "long", "material", "feels", "solid",
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "anna", "ben", "carla", "david", "elena", "farid", "greta", "hiro", "ines", "jonas",
    "kemal", "lena", "marco", "nina", "oscar", "priya", "quentin", "rosa", "samir", "tara",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "miller", "schmidt", "garcia", "rossi", "tanaka", "kowalski", "dubois", "silva",
    "novak", "jensen", "costa", "weber", "fischer", "moreau", "lindqvist", "horvat",
];

pub(crate) const CITIES: &[&str] = &[
    "Berlin", "Lisbon", "Madrid", "Vienna", "Prague", "Dublin", "Oslo", "Lyon", "Porto",
    "Hamburg", "Turin", "Krakow", "Ghent", "Tampere", "Utrecht", "Graz",
];

pub(crate) const CATEGORIES: &[&str] = &[
    "kitchen", "outdoor", "electronics", "fashion", "home", "sports", "toys", "books",
    "garden", "office", "music", "travel",
];

/// Browser and app user agents, by client kind.
pub(crate) const CHROME_UA: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
];
pub(crate) const FIREFOX_UA: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
];
pub(crate) const SAFARI_UA: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
];
pub(crate) const CURL_UA: &[&str] = &["curl/7.88.1", "curl/8.4.0"];
pub(crate) const APP_UA: &[&str] = &[
    "ExampleShop/5.12.0 (iPhone; iOS 17.1; Scale/3.00)",
    "ExampleShop/5.11.2 (Android 14; Pixel 7)",
    "okhttp/4.12.0",
];

/// Well-known scanner user agents (names are facts; CRS's own list is not read).
pub(crate) const SCANNER_UA: &[&str] = &[
    "Mozilla/5.0 (compatible; Nikto/2.1.6)",
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.1.5) (Evasions:None) (Test:000001)",
    "Nmap Scripting Engine",
    "masscan/1.3",
    "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
    "Mozilla/5.0 (compatible; Nuclei)",
    "gobuster/3.6",
    "Wfuzz/3.1.0",
    "DirBuster-1.0-RC1",
    "w3af.org",
    "Arachni/v1.5.1",
    "havij",
    "OpenVAS",
    "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0; Netsparker)",
];
