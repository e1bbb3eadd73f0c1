/* TLS VPN server (SEED TLS/SSL VPN lab): ./vpnserver <cert> <key> <shadow>
 * Many clients in one select loop; each logs in with a password checked against the
 * shadow file (crypt), gets a TUN address, and its packets go to the TUN. */
#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <unistd.h>

#define BUFF_SIZE 4096
#define MAX_CLIENTS 16

struct client {
    SSL *ssl;
    int fd;
    unsigned char ip[4]; /* its TUN address */
};

struct client clients[MAX_CLIENTS];
int next_ip = 10;
const char *shadow_file;

int createTunDevice(void)
{
    struct ifreq ifr;
    int tunfd = open("/dev/net/tun", O_RDWR);
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, "zhang%d", IFNAMSIZ - 1);
    if (tunfd < 0 || ioctl(tunfd, TUNSETIFF, &ifr) < 0) {
        perror("TUN");
        exit(1);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "ip addr add 192.168.53.1/24 dev %s", ifr.ifr_name);
    system(cmd);
    snprintf(cmd, sizeof(cmd), "ip link set dev %s up", ifr.ifr_name);
    system(cmd);
    return tunfd;
}

int login(const char *user, const char *password)
{
    char line[512];
    FILE *f = fopen(shadow_file, "r");
    if (f == NULL) return 0;
    while (fgets(line, sizeof(line), f)) {
        char *name = strtok(line, ":");
        char *hash = strtok(NULL, ":");
        if (name && hash && strcmp(name, user) == 0) {
            fclose(f);
            char *computed = crypt(password, hash);
            return computed != NULL && strcmp(computed, hash) == 0;
        }
    }
    fclose(f);
    return 0;
}

void accept_client(SSL_CTX *ctx, int listen_sock)
{
    struct sockaddr_in sa_client;
    socklen_t client_len = sizeof(sa_client);
    char buf[512], user[128], password[128];
    int fd = accept(listen_sock, (struct sockaddr *)&sa_client, &client_len);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_free(ssl);
        close(fd);
        return;
    }
    int len = SSL_read(ssl, buf, sizeof(buf) - 1);
    buf[len > 0 ? len : 0] = 0;
    if (sscanf(buf, "LOGIN %127s %127s", user, password) != 2 || !login(user, password)) {
        SSL_write(ssl, "DENIED wrong user name or password\n", 35);
        printf("login failed from %s\n", inet_ntoa(sa_client.sin_addr));
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
        return;
    }
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i].ssl == NULL) {
            clients[i].ssl = ssl;
            clients[i].fd = fd;
            unsigned char ip[4] = {192, 168, 53, next_ip++};
            memcpy(clients[i].ip, ip, 4);
            snprintf(buf, sizeof(buf), "OK 192.168.53.%d/24\n", ip[3]);
            SSL_write(ssl, buf, strlen(buf));
            printf("%s logged in as %s\n", inet_ntoa(sa_client.sin_addr), user);
            fflush(stdout);
            return;
        }
    }
    SSL_free(ssl);
    close(fd);
}

int main(int argc, char *argv[])
{
    if (argc < 4) {
        printf("usage: %s cert key shadow\n", argv[0]);
        return 1;
    }
    shadow_file = argv[3];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_file(ctx, argv[1], SSL_FILETYPE_PEM) <= 0 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) <= 0) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    int tunfd = createTunDevice();

    struct sockaddr_in sa_server;
    int listen_sock = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    int one = 1;
    setsockopt(listen_sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa_server, 0, sizeof(sa_server));
    sa_server.sin_family = AF_INET;
    sa_server.sin_addr.s_addr = INADDR_ANY;
    sa_server.sin_port = htons(4433);
    if (bind(listen_sock, (struct sockaddr *)&sa_server, sizeof(sa_server)) < 0) {
        perror("bind");
        return 1;
    }
    listen(listen_sock, 5);

    unsigned char buf[BUFF_SIZE];
    while (1) {
        fd_set readFDSet;
        FD_ZERO(&readFDSet);
        FD_SET(listen_sock, &readFDSet);
        FD_SET(tunfd, &readFDSet);
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (clients[i].ssl) FD_SET(clients[i].fd, &readFDSet);
        select(FD_SETSIZE, &readFDSet, NULL, NULL, NULL);

        if (FD_ISSET(listen_sock, &readFDSet)) accept_client(ctx, listen_sock);
        if (FD_ISSET(tunfd, &readFDSet)) {
            int len = read(tunfd, buf, BUFF_SIZE);
            for (int i = 0; i < MAX_CLIENTS; i++)
                if (clients[i].ssl && len >= 20 && memcmp(clients[i].ip, buf + 16, 4) == 0)
                    SSL_write(clients[i].ssl, buf, len);
        }
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (clients[i].ssl == NULL || !FD_ISSET(clients[i].fd, &readFDSet)) continue;
            int len = SSL_read(clients[i].ssl, buf, BUFF_SIZE);
            if (len <= 0) {
                printf("client gone\n");
                SSL_free(clients[i].ssl);
                close(clients[i].fd);
                clients[i].ssl = NULL;
                continue;
            }
            if (len >= 20) memcpy(clients[i].ip, buf + 12, 4); /* it may use its own address */
            write(tunfd, buf, len);
        }
    }
}
