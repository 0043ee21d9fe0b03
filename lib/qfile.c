/* placeholder until implemented */
typedef int postern_qfile_placeholder;
