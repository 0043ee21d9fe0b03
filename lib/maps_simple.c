/* placeholder until implemented */
typedef int postern_maps_simple_placeholder;
