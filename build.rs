//! Compiles `src/image/jpeg.c`, the driver of libjpeg-turbo's decoder (built from source by
//! `mozjpeg-sys`, whose headers it exports as `DEP_JPEG_INCLUDE`).

fn main() {
    let source = "src/image/jpeg.c";
    println!("cargo:rerun-if-changed={source}");
    let include = std::env::var_os("DEP_JPEG_INCLUDE")
        .expect("mozjpeg-sys exports its include folders as DEP_JPEG_INCLUDE");
    let mut build = cc::Build::new();
    for dir in std::env::split_paths(&include) {
        build.include(dir);
    }
    build.file(source).warnings(true).compile("lcl_jpeg");
}
