/* placeholder until implemented */
typedef int postern_log_placeholder;
