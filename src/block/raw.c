/* The raw format: the file is the disk; holes (SEEK_HOLE) report as zero. */
#include "block/blk_int.h"

#include <errno.h>
#include <unistd.h>

int raw_open(struct blk *b, struct cove_err *err)
{
	int ret = file_size(&b->file, &b->size);
	if (ret)
		return cove_err_set(err, ret, "%s: cannot get the file size", b->filename);
	/* As QEMU: a disk is made of 512-byte sectors; a partial last one reads as zero. */
	b->size = (b->size + 511) & ~511ull;
	return 0;
}

int raw_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	return file_preadv(&b->file, iov, iovcnt, off);
}

int raw_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	return file_pwritev(&b->file, iov, iovcnt, off);
}

int raw_zero(struct blk *b, uint64_t off, uint64_t len, bool unmap)
{
	return file_zero(&b->file, off, len, unmap);
}

int raw_block_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st)
{
	st->file_offset = off;
	st->file_name = b->filename;
	st->depth = 0;
	st->flags = BLK_STATUS_ALLOCATED | BLK_STATUS_OFFSET;
	off_t data = lseek(b->file.fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) {
			/* No data from off to EOF: a hole. */
			st->flags |= BLK_STATUS_ZERO;
			st->len = len;
			return 0;
		}
		/* SEEK_DATA unsupported: everything is data. */
		st->flags |= BLK_STATUS_DATA;
		st->len = len;
		return 0;
	}
	if ((uint64_t)data > off) {
		st->flags |= BLK_STATUS_ZERO;
		st->len = min_u64((uint64_t)data - off, len);
		return 0;
	}
	off_t hole = lseek(b->file.fd, (off_t)off, SEEK_HOLE);
	st->flags |= BLK_STATUS_DATA;
	if (hole < 0 || (uint64_t)hole <= off)
		st->len = len;
	else
		st->len = min_u64((uint64_t)hole - off, len);
	return 0;
}
