/* placeholder until implemented */
typedef int postern_wakeup_placeholder;
