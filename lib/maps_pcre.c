/* placeholder until implemented */
typedef int postern_maps_pcre_placeholder;
