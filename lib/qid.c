/* placeholder until implemented */
typedef int postern_qid_placeholder;
