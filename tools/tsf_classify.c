/* tsf_classify.c - `tsf classify` and `tsf attention`, included by tsf.c. (Being written.) */
static int cmd_classify(int argc, char **argv) {
    (void)argc, (void)argv;
    tt_error("classify: not implemented yet");
    return 2;
}
static int cmd_attention(int argc, char **argv) {
    (void)argc, (void)argv;
    tt_error("attention: not implemented yet");
    return 2;
}
