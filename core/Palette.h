#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace atlascope {
// Distinct colours for n categories (up to thousands): golden-angle hues over three
// saturation/lightness rings, so neighbours in the list differ in hue and in lightness. One
// palette for the views, the exports and the uns colours written into h5ad files.
std::vector<std::array<std::uint8_t, 3>> categoricalPalette(std::size_t n);
// HSV to RGB: hue in sixths of the circle [0, 6), saturation and value in [0, 1]; RGB in [0, 1].
std::array<double, 3> hsvToRgb(double h, double s, double v);
// "#RRGGBB" or "RRGGBB" (any case, as h5ad uns colours and the ABC's *_color columns hold them);
// grey for anything else.
std::array<std::uint8_t, 3> parseHexColour(const std::string& hex);
// "#rrggbb", as anndata writes uns colours.
std::string hexColour(const std::array<std::uint8_t, 3>& rgb);
} // namespace atlascope
