/* Unit tests for the DoT ID map: insert, find, remove, capacity and the probe runs that
 * deletion must keep intact. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dnsward/idmap.h"

static void test_insert_find_remove(void **state)
{
    (void)state;
    struct idmap m;
    int a = 1, b = 2;
    assert_int_equal(idmap_init(&m, 8), 0);
    assert_int_equal(idmap_insert(&m, 100, &a), 0);
    assert_int_equal(idmap_insert(&m, 200, &b), 0);
    assert_ptr_equal(idmap_find(&m, 100), &a);
    assert_ptr_equal(idmap_find(&m, 200), &b);
    assert_null(idmap_find(&m, 300));
    assert_int_equal(idmap_count(&m), 2);
    assert_ptr_equal(idmap_remove(&m, 100), &a);
    assert_null(idmap_find(&m, 100));
    assert_null(idmap_remove(&m, 100));
    assert_int_equal(idmap_count(&m), 1);
    idmap_cleanup(&m);
}

static void test_duplicate_id_refused(void **state)
{
    (void)state;
    struct idmap m;
    int a = 1;
    assert_int_equal(idmap_init(&m, 4), 0);
    assert_int_equal(idmap_insert(&m, 7, &a), 0);
    assert_int_equal(idmap_insert(&m, 7, &a), -EEXIST);
    idmap_cleanup(&m);
}

static void test_capacity_bound(void **state)
{
    (void)state;
    struct idmap m;
    int v = 0;
    assert_int_equal(idmap_init(&m, 3), 0);
    assert_int_equal(idmap_insert(&m, 1, &v), 0);
    assert_int_equal(idmap_insert(&m, 2, &v), 0);
    assert_int_equal(idmap_insert(&m, 3, &v), 0);
    assert_true(idmap_full(&m));
    assert_int_equal(idmap_insert(&m, 4, &v), -ENOSPC);
    idmap_cleanup(&m);
    assert_int_equal(idmap_init(&m, 0), -EINVAL);
    assert_int_equal(idmap_init(&m, 40000), -EINVAL);
}

/* Fill the map to its limit with every ID sharing few home slots, then delete in an order
 * that forces backward shifts across the wrap-around, and check nothing is lost. */
static void test_remove_keeps_probe_runs(void **state)
{
    (void)state;
    enum { N = 512 };
    struct idmap m;
    static int values[65536];
    assert_int_equal(idmap_init(&m, N), 0);
    uint16_t ids[N];
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        do {
            x = x * 1103515245u + 12345u;
            ids[i] = (uint16_t)(x >> 16);
        } while (idmap_find(&m, ids[i]) != NULL);
        assert_int_equal(idmap_insert(&m, ids[i], &values[ids[i]]), 0);
    }
    for (int i = 0; i < N; i += 2)
        assert_ptr_equal(idmap_remove(&m, ids[i]), &values[ids[i]]);
    for (int i = 0; i < N; i++) {
        if (i % 2)
            assert_ptr_equal(idmap_find(&m, ids[i]), &values[ids[i]]);
        else
            assert_null(idmap_find(&m, ids[i]));
    }
    for (int i = 1; i < N; i += 2)
        assert_ptr_equal(idmap_remove(&m, ids[i]), &values[ids[i]]);
    assert_int_equal(idmap_count(&m), 0);
    idmap_cleanup(&m);
}

/* Every one of the 65536 IDs, inserted and removed in chunks: the map is exact. */
static void test_every_id(void **state)
{
    (void)state;
    struct idmap m;
    static int v;
    assert_int_equal(idmap_init(&m, 4096), 0);
    for (unsigned base = 0; base < 65536; base += 4096) {
        for (unsigned id = base; id < base + 4096; id++)
            assert_int_equal(idmap_insert(&m, (uint16_t)id, &v), 0);
        for (unsigned id = base; id < base + 4096; id++)
            assert_ptr_equal(idmap_remove(&m, (uint16_t)id), &v);
        assert_int_equal(idmap_count(&m), 0);
    }
    idmap_cleanup(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find_remove), cmocka_unit_test(test_duplicate_id_refused),
        cmocka_unit_test(test_capacity_bound),     cmocka_unit_test(test_remove_keeps_probe_runs),
        cmocka_unit_test(test_every_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
