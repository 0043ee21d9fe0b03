/* placeholder until implemented */
typedef int postern_iox_placeholder;
