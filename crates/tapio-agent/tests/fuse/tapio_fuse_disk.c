// SPDX-License-Identifier: Apache-2.0
/*
 * A FUSE file system with one file, /disk, that misbehaves on purpose: the
 * backing file of a loop device in the storage real-kernel tests.
 *
 * Every read returns zeros, except:
 *   - reads touching [EIO_OFF, EIO_OFF + RANGE)  fail with EIO;
 *   - reads touching [SLOW_OFF, SLOW_OFF + RANGE) sleep SLOW_MS first;
 *   - a read starting exactly at SHORT_OFF returns half of what was asked
 *     (the loop driver then completes the request partially and requeues
 *     the rest).
 * Writes are accepted and discarded. Offsets are fixed here and mirrored in
 * tests/kernel_storage.rs.
 *
 * Usage: tapio_fuse_disk <mountpoint> -f
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fuse.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MIB (1024L * 1024L)
#define DISK_SIZE (64 * MIB)
#define EIO_OFF (8 * MIB)
#define SLOW_OFF (16 * MIB)
#define SHORT_OFF (24 * MIB)
#define RANGE (64 * 1024L)
#define SLOW_MS 300

static const char *disk = "/disk";

static int touches(off_t off, size_t size, off_t start)
{
	return off < start + RANGE && off + (off_t)size > start;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, disk) != 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_size = DISK_SIZE;
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, disk + 1, NULL, 0, 0);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, disk) != 0)
		return -ENOENT;
	/* No page cache: every read of the loop device reaches us. */
	fi->direct_io = 1;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, disk) != 0)
		return -ENOENT;
	if (off >= DISK_SIZE)
		return 0;
	if ((off_t)size > DISK_SIZE - off)
		size = DISK_SIZE - off;
	if (touches(off, size, EIO_OFF))
		return -EIO;
	if (touches(off, size, SLOW_OFF)) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = SLOW_MS * 1000000L };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	if (off == SHORT_OFF && size > 512)
		size /= 2;
	memset(buf, 0, size);
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)buf;
	(void)off;
	(void)fi;
	if (strcmp(path, disk) != 0)
		return -ENOENT;
	return (int)size;
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
};

int main(int argc, char *argv[])
{
	return fuse_main(argc, argv, &ops, NULL);
}
