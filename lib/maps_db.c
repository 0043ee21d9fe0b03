/* placeholder until implemented */
typedef int postern_maps_db_placeholder;
