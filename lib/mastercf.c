/* placeholder until implemented */
typedef int postern_mastercf_placeholder;
