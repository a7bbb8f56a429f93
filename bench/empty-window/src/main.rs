//! An empty Tauri window: the yardstick for the desktop app's start-up time and idle
//! memory in the benchmark. It prints `page loaded` when its page has loaded.

fn main() {
    let result = tauri::Builder::default()
        .on_page_load(|_, payload| {
            if matches!(payload.event(), tauri::webview::PageLoadEvent::Finished) {
                eprintln!("page loaded");
            }
        })
        .run(tauri::generate_context!());
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
