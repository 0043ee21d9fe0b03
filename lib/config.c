/* placeholder until implemented */
typedef int postern_config_placeholder;
