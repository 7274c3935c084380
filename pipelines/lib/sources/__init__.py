"""Where leads come from: declared sources, reading the files people really have, header mapping, samples."""
